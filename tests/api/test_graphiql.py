"""GraphiQL from the files the app ships (api/static/graphiql): the page and its
headers over HTTP, and the page in a real headless Chromium whose every request to a
host other than the app's is aborted, so it loads, renders the editor and runs a
query with nothing from outside."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from urllib.parse import urlsplit

import httpx

from api.app import create_app
from api.graphiql import CONTENT_SECURITY_POLICY, GRAPHIQL_DIR
from tests.api.conftest import enroll, set_tier
from tests.api.test_board import ARTIFACTS, browser_page, expect  # noqa: F401 - browser_page is a fixture

SHIPPED = ["react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "graphiql.min.css", "graphiql-init.js"]


async def test_the_page_and_its_files_come_from_the_app(api):
    page = await api.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe" not in CONTENT_SECURITY_POLICY
    assert "<script>" not in page.text  # nothing inline
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources  # no outside host
    for name in SHIPPED:
        assert f"/graphiql/static/{name}" in sources
        response = await api.client.get(f"/graphiql/static/{name}")
        assert response.status_code == 200 and len(response.content) > 100
    for licence in ("LICENSE.graphiql", "LICENSE.react", "LICENSE.react-dom"):
        assert "MIT License" in (GRAPHIQL_DIR / licence).read_text()
    assert "graphiql@3.9.0" in (GRAPHIQL_DIR / "VERSIONS.md").read_text()


async def test_no_graphiql_when_it_is_turned_off(db):
    app = create_app(replace(db, graphiql=False), manage_orm=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/graphql", headers={"Accept": "text/html"})).status_code == 404
        assert (await client.get("/graphiql/static/graphiql.min.js")).status_code == 404


async def test_graphiql_renders_and_runs_a_query_with_no_outside_network(live_server, browser_page):
    page = browser_page
    app_host = urlsplit(live_server.url).netloc
    outside: list[str] = []

    async def only_the_app(route):
        if urlsplit(route.request.url).netloc == app_host or route.request.url.startswith("data:"):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await page.context.route("**/*", only_the_app)
    response = await page.goto(f"{live_server.url}/graphql")
    assert response.status == 200 and response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY

    await expect(page.locator(".graphiql-container")).to_be_visible()
    await expect(page.locator(".graphiql-query-editor .CodeMirror")).to_be_visible()
    await expect(page.locator(".graphiql-query-editor")).to_contain_text("query Tiers")
    await page.click(".graphiql-execute-button")
    # No token in the headers: the server answers UNAUTHENTICATED, shown in the result pane.
    await expect(page.locator(".graphiql-response")).to_contain_text("UNAUTHENTICATED")

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "graphiql.png"))
    assert outside == []  # nothing asked for beyond the app
    assert page.problems == [], page.problems  # no CSP violation, no script error


async def test_graphiql_follows_a_subscription_over_the_websocket(live_server, browser_page):
    page, api = browser_page, live_server.api
    member = await enroll(api)
    await page.goto(f"{live_server.url}/graphql")
    await expect(page.locator(".graphiql-query-editor .CodeMirror")).to_be_visible()
    # The editors are CodeMirror 5 instances: set their text as a user would paste it.
    await page.evaluate(
        """([query, headers]) => {
            document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(query);
            const editors = [...document.querySelectorAll('.graphiql-editor-tool .CodeMirror')];
            editors[editors.length - 1].CodeMirror.setValue(headers);
        }""",
        ["subscription Live { tierChanged { cardNumber toTier } }",
         json.dumps({"Authorization": f"Bearer {api.token('admin')}"})],
    )
    # GraphiQL takes the editors' text into its state after a debounce: a run started
    # before it sends the previous query or headers and ends at once with an error. Run
    # again until the subscription is the one running (its button turns to Stop).
    button = page.locator(".graphiql-execute-button")
    for attempt in range(10):
        await button.click()
        try:
            await expect(button).to_have_attribute("aria-label", re.compile("Stop"), timeout=2000)
            break
        except AssertionError:
            assert attempt < 9, await page.locator(".graphiql-response").inner_text()
            # The early run's refusal (400: the previous operation name) is the browser's
            # console line, not a problem of the page.
            page.problems[:] = [problem for problem in page.problems if "status of 400" not in problem]
    await set_tier(api, member, "GOLD")
    await expect(page.locator(".graphiql-response")).to_contain_text(member["cardNumber"])
    await expect(page.locator(".graphiql-response")).to_contain_text("GOLD")
    assert page.problems == [], page.problems
