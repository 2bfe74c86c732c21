"""The VIP board (/board): the page and its headers over HTTP, and the page itself in
a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright) against a
real uvicorn on a loopback port, on the test database.

Screenshots go to test-artifacts/ (gitignored). No sleeps: Playwright's expect()
waits for each condition, up to EXPECT_TIMEOUT_MS.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from api.auth import mint_token
from api.board import CONTENT_SECURITY_POLICY, STATIC_DIR
from members.access import Role
from tests.api.care_factories import vip
from tests.api.conftest import data, enroll, set_tier

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
EXPECT_TIMEOUT_MS = 15_000
# As root in a container: no sandbox; and no calls home, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
TOKEN_KEY = "loyalty.board.token"


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

    assert page.index('src="/board/static/board-format.js"') < page.index('src="/board/static/board.js"')

    script = await api.client.get("/board/static/board.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "graphql-transport-ws" in script.text
    assert (await api.client.get("/board/static/board-format.js")).status_code == 200
    sheet = await api.client.get("/board/static/board.css")
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/css")
    assert (await api.client.get("/board/static/missing.js")).status_code == 404


# ---- the page in Chromium -------------------------------------------------------


@pytest.fixture
async def browser_page():
    """A fresh Chromium page; console errors (CSP violations, script errors) are
    collected in `page.problems` for the test to check."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run installs it)")
    playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed (pip install -e '.[test]')")
    playwright_api.expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            page.problems = []
            page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
            page.on("pageerror", lambda e: page.problems.append(str(e)))
            yield page
        finally:
            await browser.close()


def expect(target):
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(target)


def token(settings, role: Role, scope: str | None = None, sub: str = "board-test") -> str:
    return mint_token(settings, role, sub, scope, 600)


async def sign_in(page, base_url: str, jwt: str) -> None:
    response = await page.goto(f"{base_url}/board")
    assert response.status == 200
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    await page.fill("#token", jwt)
    await page.click("#sign-in-button")


def row_of(page, member: dict):
    return page.locator(f'#worklist tr[data-card="{member["cardNumber"]}"]')


async def worklist_cards(page) -> list[str]:
    return await page.locator("#worklist tr[data-card]").evaluate_all("rows => rows.map(r => r.dataset.card)")


def installed_cjk_fonts() -> set[str]:
    """Font families fontconfig has for Chinese (fc-list :lang=zh), e.g. "Noto Sans CJK SC"."""
    if shutil.which("fc-list") is None:
        return set()
    listing = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=True).stdout
    return {family.strip() for line in listing.splitlines() for family in line.split(",") if family.strip()}


async def fonts_drawing(page, selector: str) -> dict[str, int]:
    """The fonts Chromium drew an element's text with, as glyphs per font family
    (DevTools' CSS.getPlatformFontsForNode): a character no installed font has is drawn
    by a fallback font (a box) and counted under that font."""
    cdp = await page.context.new_cdp_session(page)
    try:
        await cdp.send("DOM.enable")
        await cdp.send("CSS.enable")
        document = await cdp.send("DOM.getDocument", {"depth": 0})
        node = await cdp.send("DOM.querySelector", {"nodeId": document["root"]["nodeId"], "selector": selector})
        assert node["nodeId"], f"nothing matches {selector}"
        fonts = (await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]}))["fonts"]
    finally:
        await cdp.detach()
    return {font["familyName"]: font["glyphCount"] for font in fonts}


def bar_count(page, tier: str):
    return page.locator(f'#counts-chart [data-tier="{tier}"] .count')


def schema_has_query(name: str) -> bool:
    """Whether this build's schema has the query field (the care queries of issue 6
    come in their own commits; until then the board says "not available")."""
    from graphql import build_schema as parse_sdl

    from schema.build import build_schema

    return name in parse_sdl(str(build_schema())).query_type.fields


async def test_office_head_sees_counts_worklist_and_a_live_tier_change(live_server, browser_page):
    api, page = live_server.api, browser_page
    # PEK01: 3 STANDARD, 2 SILVER, 1 GOLD, 0 PLATINUM. TSN01 (same branch): 1 GOLD, not on the board.
    standard = [await enroll(api, "PEK01") for _ in range(3)]
    silver = [await enroll(api, "PEK01") for _ in range(2)]
    gold = await enroll(api, "PEK01")
    elsewhere = await enroll(api, "TSN01")
    for member in silver:
        await set_tier(api, member, "SILVER")
    await set_tier(api, gold, "GOLD")
    await set_tier(api, elsewhere, "GOLD")

    office_token = token(api.settings, Role.OFFICE, "PEK01")
    await sign_in(page, live_server.url, office_token)

    await expect(page.locator("#region")).to_have_text("Beijing Dongcheng Sales Office (PEK01) · Beijing · North China Branch")
    await expect(page.locator("#live-status")).to_have_text("live")
    for tier, count in (("STANDARD", "3"), ("SILVER", "2"), ("GOLD", "1"), ("PLATINUM", "0")):
        await expect(bar_count(page, tier)).to_have_text(count)
    await expect(page.locator("#counts-total")).to_have_text("6 members, 3 VIPs (silver and above)")
    await expect(page.locator("#sign-in")).to_be_hidden()
    await expect(page.locator("#error")).to_be_hidden()
    assert await page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") == office_token

    vip_cards = sorted(m["cardNumber"] for m in [*silver, gold])
    has_worklist, has_stats = schema_has_query("careCallsDue"), schema_has_query("regionStats")
    if has_worklist:
        # Every PEK01 VIP was upgraded today and never called: all three are due, none from TSN01.
        await expect(page.locator("#worklist tr")).to_have_count(3)
        assert sorted(await page.locator("#worklist tr").evaluate_all("rows => rows.map(r => r.dataset.card)")) == vip_cards
        await expect(page.locator("#worklist-count")).to_have_text("3")
    else:
        await expect(page.locator("#worklist-note")).to_have_text("Worklist not available on this server.")
    if has_stats:
        await expect(page.locator('#stats [data-stat="vips"]')).to_have_text("3")
        await expect(page.locator('#stats [data-stat="careCallCoverage"]')).to_have_text("0%")  # nobody called yet
        await expect(page.locator('#stats [data-stat="openComplaints"]')).to_have_text("0")
        await expect(page.locator("#stats-note")).to_be_hidden()
        await expect(page.locator("#offices-panel")).to_be_hidden()  # per-office figures: a branch's view
    else:
        await expect(page.locator("#stats-note")).to_have_text("Region figures not available on this server.")

    # Two tier changes while the page is open, through the API over HTTP: first one in
    # TSN01 (outside the office), then one in PEK01. Events arrive in log order, so once
    # the PEK01 change shows, the TSN01 one would already be there if scope leaked.
    await set_tier(api, elsewhere, "PLATINUM")
    promoted = standard[0]
    await set_tier(api, promoted, "PLATINUM")

    change = page.locator(f'#changes li[data-card="{promoted["cardNumber"]}"]')
    await expect(change).to_contain_text("STANDARD → PLATINUM")
    await expect(change).to_contain_text("manual")
    await expect(page.locator("#changes li")).to_have_count(1)
    await expect(page.locator("#changes-empty")).to_be_hidden()
    for tier, count in (("STANDARD", "2"), ("SILVER", "2"), ("GOLD", "1"), ("PLATINUM", "1")):
        await expect(bar_count(page, tier)).to_have_text(count)
    await expect(page.locator("#counts-total")).to_have_text("6 members, 4 VIPs (silver and above)")
    # The other panels follow the change too: the new PLATINUM is a VIP just upgraded.
    if has_worklist:
        await expect(page.locator("#worklist-count")).to_have_text("4")
        await expect(page.locator(f'#worklist tr[data-card="{promoted["cardNumber"]}"] .reason')).to_have_text("just upgraded")
    if has_stats:
        await expect(page.locator('#stats [data-stat="vips"]')).to_have_text("4")

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "board.png"), full_page=True)

    # A reload keeps the session (sessionStorage) and reads the counts again.
    await page.reload()
    await expect(page.locator("#region")).to_contain_text("(PEK01)")
    await expect(bar_count(page, "PLATINUM")).to_have_text("1")
    # Signing out forgets the token.
    await page.click("#sign-out")
    await expect(page.locator("#sign-in")).to_be_visible()
    assert await page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None
    assert page.problems == []  # no CSP violation, no script error


async def test_branch_head_sees_every_office_of_the_branch(live_server, browser_page):
    api, page = live_server.api, browser_page
    await set_tier(api, await enroll(api, "PEK01"), "GOLD")
    await set_tier(api, await enroll(api, "TSN01"), "GOLD")
    await enroll(api, "TSN01")
    await set_tier(api, await enroll(api, "PVG01"), "GOLD")  # East China: another branch
    office_requests = []
    page.on("request", lambda r: "officeStats" in (r.post_data or "") and office_requests.append(r.url))

    await sign_in(page, live_server.url, token(api.settings, Role.BRANCH, "NCB"))

    await expect(page.locator("#region")).to_contain_text("North China Branch (NCB)")
    await expect(bar_count(page, "GOLD")).to_have_text("2")
    await expect(bar_count(page, "STANDARD")).to_have_text("1")
    await expect(page.locator("#live-status")).to_have_text("live")
    # Per-office figures of the branch's 24 offices (members/data/regions.json), none of ECB's.
    await expect(page.locator("#offices tr")).to_have_count(24)
    pek01, tsn01 = page.locator('#offices tr[data-office="PEK01"]'), page.locator('#offices tr[data-office="TSN01"]')
    await expect(pek01.locator("th")).to_have_text("Beijing Dongcheng Sales Office (PEK01)")
    for row, members, vips in ((pek01, "1", "1"), (tsn01, "2", "1")):
        await expect(row.locator('[data-stat="members"]')).to_have_text(members)
        await expect(row.locator('[data-stat="vips"]')).to_have_text(vips)
        await expect(row.locator('[data-stat="careCallCoverage"]')).to_have_text("0%")
        await expect(row.locator('[data-stat="averageSatisfaction"]')).to_have_text("–")  # no score given
    await expect(page.locator('#offices tr[data-office="SJW01"] [data-stat="members"]')).to_have_text("0")
    await expect(page.locator('#offices tr[data-office="PVG01"]')).to_have_count(0)
    # Every office in one request (officeStats beside regionStats), not one per office.
    assert office_requests == [f"{live_server.url}/graphql"]
    assert page.problems == []


BAD_TOKENS = [
    ("garbage", lambda s: "not-a-token", "That is not a token: a JWT is three base64url parts separated by dots"),
    ("wrong signature", lambda s: token(replace(s, jwt_secret="another-secret-0123456789-0123456789"), Role.OFFICE, "PEK01"),
     "The server refused this token: invalid token: Signature verification failed"),
    ("expired", lambda s: mint_token(s, Role.OFFICE, "board-test", "PEK01", -3600), "This token expired at"),
    ("member role", lambda s: token(s, Role.MEMBER),
     'This board is for office, branch and admin staff; this token\'s role is "member".'),
    ("unknown office", lambda s: token(s, Role.OFFICE, "ZZZ99"),
     "The server refused this token: the scope 'ZZZ99' of this token is not a current office"),
]


async def test_a_bad_token_shows_a_clear_message(live_server, browser_page):
    page = browser_page
    response = await page.goto(f"{live_server.url}/board")
    assert response.status == 200
    for label, make_token, message in BAD_TOKENS:
        await page.fill("#token", make_token(live_server.api.settings))
        await page.click("#sign-in-button")
        await expect(page.locator("#error")).to_contain_text(message)  # fails with the page's text: see `label`
        await expect(page.locator("#board")).to_be_hidden()
        await expect(page.locator("#sign-in")).to_be_visible()
        assert await page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None, label
        if label == "wrong signature":
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "board-bad-token.png"))


# ---- names and numbers as the board writes them (board-format.js) -------------------

DISPLAY_NAMES = [
    (("王", "佳琪"), "王佳琪"),  # Chinese: family name then given name, no space
    (("欧阳", "娜娜"), "欧阳娜娜"),  # a two-character family name
    (("山田", "太郎"), "山田太郎"),  # Japanese
    (("김", "민준"), "김민준"),  # Korean
    (("买买提", "阿依古丽·艾力"), "买买提阿依古丽·艾力"),  # a transliterated name with its middle dot
    ((" 王 ", " 佳琪 "), "王佳琪"),  # as typed, spaces trimmed
    (("Wang", "Fang"), "Wang Fang"),  # Latin: with a space
    (("Müller", "Jürgen"), "Müller Jürgen"),
    (("王", "Anna"), "王 Anna"),  # mixed scripts: with a space
    (("Li", "佳琪"), "Li 佳琪"),
    (("王", "佳琪2"), "王 佳琪2"),  # a digit is not a CJK character
    (("王", ""), "王"),
    (("", "Fang"), "Fang"),
]
NUMBERS = [(0, "0"), (999, "999"), (1000, "1,000"), (1234567, "1,234,567"), (-1500, "-1,500")]
PERCENTS = [(0, "0%"), (0.0833, "8%"), (0.5, "50%"), (1, "100%")]
DECIMALS = [(None, "–"), (4, "4.0"), (4.25, "4.3"), (1234.5, "1,234.5")]


async def test_names_and_numbers_are_written_as_the_board_shows_them(browser_page):
    page = browser_page
    await page.add_script_tag(path=str(STATIC_DIR / "board-format.js"))
    written = await page.evaluate(
        """([names, numbers, percents, decimals]) => [
          names.map(([family, given]) => BoardFormat.displayName(family, given)),
          numbers.map((n) => BoardFormat.number(n)),
          percents.map((n) => BoardFormat.percent(n)),
          decimals.map((n) => BoardFormat.decimal(n)),
        ]""",
        [[list(parts) for parts, _ in DISPLAY_NAMES], *([v for v, _ in cases] for cases in (NUMBERS, PERCENTS, DECIMALS))],
    )
    assert written == [[text for _, text in cases] for cases in (DISPLAY_NAMES, NUMBERS, PERCENTS, DECIMALS)]


# ---- the worklist: paging, logging a call, Chinese names in a CJK font --------------

MEMBER_CALLS = "query($id: ID) { member(id: $id) { careCalls(first: 5) { edges { node { outcome satisfaction notes actor } } } } }"


async def calls_of(api, member: dict) -> list[dict]:
    result = data(await api.gql(MEMBER_CALLS, {"id": member["id"]}, as_=("admin",)))
    return [edge["node"] for edge in result["member"]["careCalls"]["edges"]]


async def log_from_row(page, member: dict, outcome: str, satisfaction: str = "", notes: str = ""):
    """Fill the call form of the member's row (opening it if needed) and save; the form."""
    form = page.locator(f'#worklist tr.call-form-row[data-member="{member["id"]}"] form')
    if not await form.count():
        await row_of(page, member).locator("button.log-call").click()
    await form.locator('select[name="outcome"]').select_option(outcome)
    await form.locator('select[name="satisfaction"]').select_option(satisfaction)
    await form.locator('textarea[name="notes"]').fill(notes)
    await form.locator('button[type="submit"]').click()
    return form


async def test_office_head_pages_the_worklist_and_logs_calls_from_it(live_server, browser_page):
    api, page = live_server.api, browser_page
    # 12 GOLD VIPs of PEK01, all just upgraded and never called, so due in enrolment
    # order (same reason, tier and day: then member id): pages of 10 and 2.
    wang = await vip(api, "PEK01", familyName="王", givenName="佳琪")
    ouyang = await vip(api, "PEK01", familyName="欧阳", givenName="娜娜")
    others = [await vip(api, "PEK01") for _ in range(10)]
    cards = [m["cardNumber"] for m in (wang, ouyang, *others)]

    await sign_in(page, live_server.url, token(api.settings, Role.OFFICE, "PEK01"))

    rows = page.locator("#worklist tr[data-card]")
    await expect(page.locator("#worklist-count")).to_have_text("12")
    await expect(rows).to_have_count(10)
    assert await worklist_cards(page) == cards[:10]
    await expect(page.locator("#worklist-page")).to_have_text("Page 1 of 2")
    await expect(page.locator("#worklist-previous")).to_be_disabled()

    # Names as written (no space between a Chinese family and given name), phone numbers.
    await expect(row_of(page, wang).locator(".name")).to_have_text("王佳琪")
    await expect(row_of(page, ouyang).locator(".name")).to_have_text("欧阳娜娜")
    await expect(row_of(page, others[0]).locator(".name")).to_have_text(f"Wang {others[0]['givenName']}")
    phone = row_of(page, wang).locator(".phone a")
    await expect(phone).to_have_text(wang["phone"])  # +86 139 0000000n
    assert await phone.get_attribute("href") == "tel:" + re.sub(r"[^\d+]", "", wang["phone"])

    # A real CJK font draws the Chinese name: installed (fonts-noto-cjk), and each of
    # the three characters drawn by it, not by a fallback font's boxes.
    cjk_fonts = installed_cjk_fonts()
    assert cjk_fonts, "no CJK font: fc-list :lang=zh lists none (apt-get install fonts-noto-cjk; .ci/run does)"
    drawn = await fonts_drawing(page, f'#worklist tr[data-card="{wang["cardNumber"]}"] .name')
    assert sum(drawn.values()) == 3 and set(drawn) <= cjk_fonts, drawn
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "board-worklist.png"), full_page=True)

    # Paging: the second page holds the two others, then back to the first.
    await page.click("#worklist-next")
    await expect(page.locator("#worklist-page")).to_have_text("Page 2 of 2")
    await expect(rows).to_have_count(2)
    assert await worklist_cards(page) == cards[10:]
    await expect(page.locator("#worklist-next")).to_be_disabled()
    await page.click("#worklist-previous")
    await expect(page.locator("#worklist-page")).to_have_text("Page 1 of 2")
    await expect(rows.first).to_have_attribute("data-card", cards[0])
    assert await worklist_cards(page) == cards[:10]

    # A refused call: the server's userError shows in the row's form; nothing is logged.
    form = await log_from_row(page, wang, "NO_ANSWER", satisfaction="4")
    await expect(form.locator(".form-errors")).to_have_text("satisfaction is told only on a REACHED call")
    await page.screenshot(path=str(ARTIFACTS / "board-call-form.png"), full_page=True)
    assert await calls_of(api, wang) == []
    await expect(page.locator("#worklist-count")).to_have_text("12")

    # Reached, with a satisfaction score and a note: the member leaves the worklist, the
    # first page takes the next member up, coverage counts the contact (1 of 12 VIPs).
    await log_from_row(page, wang, "REACHED", satisfaction="5", notes="想要靠窗的座位")
    await expect(page.locator("#worklist-status")).to_have_text("Call to 王佳琪 logged: reached.")
    await expect(row_of(page, wang)).to_have_count(0)
    await expect(page.locator("#worklist-count")).to_have_text("11")
    await expect(rows).to_have_count(10)
    await expect(rows.last).to_have_attribute("data-card", cards[10])
    await expect(page.locator('#stats [data-stat="careCallCoverage"]')).to_have_text("8%")
    assert await calls_of(api, wang) == [
        {"outcome": "REACHED", "satisfaction": 5, "notes": "想要靠窗的座位", "actor": "office:board-test@PEK01"},
    ]

    # A form being filled in survives the reload a live tier change brings: a new SILVER
    # VIP joins the worklist (12 due) and the note typed so far is still there.
    await row_of(page, ouyang).locator("button.log-call").click()
    note = page.locator(f'#worklist tr.call-form-row[data-member="{ouyang["id"]}"] textarea[name="notes"]')
    await note.fill("下周再打")
    await set_tier(api, await enroll(api, "PEK01"), "SILVER")
    await expect(page.locator("#worklist-count")).to_have_text("12")
    await expect(note).to_have_value("下周再打")

    # No answer is no contact: the member stays due, marked as logged.
    await log_from_row(page, ouyang, "NO_ANSWER", notes="下周再打")
    await expect(row_of(page, ouyang).locator(".logged")).to_have_text("logged: no answer")
    await expect(page.locator("#worklist-count")).to_have_text("12")
    assert await calls_of(api, ouyang) == [
        {"outcome": "NO_ANSWER", "satisfaction": None, "notes": "下周再打", "actor": "office:board-test@PEK01"},
    ]
    assert page.problems == []
