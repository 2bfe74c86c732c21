"""The VIP board (/board): the page and its headers over HTTP."""

from __future__ import annotations

from api.board import CONTENT_SECURITY_POLICY


# ---- the page over HTTP (no browser needed) ----------------------------------------


async def test_board_page_is_served_with_a_strict_csp(api):
    response = await api.client.get("/board")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "'unsafe-inline'" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    page = response.text
    assert '<script src="/board/static/board.js" defer></script>' in page
    assert "<script>" not in page and " onclick=" not in page and " style=" not in page  # nothing inline

    script = await api.client.get("/board/static/board.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "graphql-transport-ws" in script.text
    sheet = await api.client.get("/board/static/board.css")
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/css")
    assert (await api.client.get("/board/static/missing.js")).status_code == 404
