"""GraphiQL from files the app ships (api/static/graphiql: a pinned GraphiQL with
React, their licences and VERSIONS.md), so the page works offline and where a CDN is
blocked. GET /graphql from a browser gets the page (strawberry decides when); its
scripts and style sheets come from /graphiql/static/. The Content-Security-Policy
allows this origin only: no inline script, no outside host."""

from __future__ import annotations

from pathlib import Path

from starlette.responses import FileResponse
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from api import board

GRAPHIQL_DIR = Path(__file__).parent / "static" / "graphiql"
STATIC_PREFIX = "/graphiql/static"

# The board's policy (this origin only, nothing inline, no framing), and fonts from
# data: URIs: GraphiQL's are inside graphiql.min.css. Its editors set style attributes
# from script, which style-src 'self' allows.
CONTENT_SECURITY_POLICY = f"{board.CONTENT_SECURITY_POLICY}; font-src 'self' data:"
PAGE_HEADERS = {**board.PAGE_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY}


def graphiql_page() -> FileResponse:
    return FileResponse(GRAPHIQL_DIR / "graphiql.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


def graphiql_routes() -> list[BaseRoute]:
    """/graphiql/static/* (the page's scripts, style sheets and licences)."""
    return [Mount(STATIC_PREFIX, app=StaticFiles(directory=GRAPHIQL_DIR), name="graphiql-static")]
