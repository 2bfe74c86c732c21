"""The VIP board: one static page at /board for office and branch heads.

The page (api/static/board.html, board.js, board.css) talks to /graphql like any
other client: the token a user pastes stays in the browser's sessionStorage and
goes in the Authorization header (HTTP) and in connection_init (WebSocket). The
page is served with a strict Content-Security-Policy: scripts and styles only
from this origin, no inline script, no framing.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",  # /graphql over HTTP and WebSocket, same origin
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])

PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


async def board_page(request: Request) -> FileResponse:
    return FileResponse(STATIC_DIR / "board.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


def board_routes() -> list[BaseRoute]:
    """GET /board (the page) and /board/static/* (its script and style sheet)."""
    return [
        Route("/board", board_page, methods=["GET"]),
        Mount("/board/static", app=StaticFiles(directory=STATIC_DIR), name="board-static"),
    ]
