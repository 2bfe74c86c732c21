"""`loyalty webhooks` as an operator runs it, on the test session's database: set (the
secret printed once), list, run --once to a real receiver (tests/api/webhook_receiver.py)
that verifies the signatures, log, pause and resume, rotate-secret; every mistake one
line."""

from __future__ import annotations

import asyncio
import re
import signal
import threading
from datetime import datetime, timedelta

from members import partners
from tests.api.conftest import api, enroll, set_tier  # noqa: F401 - the api fixture, for posting data
from tests.api.webhook_receiver import Receiver
from tests.cli.conftest import finished, lines_until, one_line_error, run, running_cli

HTTP_OK = {"LOYALTY_WEBHOOK_ALLOW_HTTP": "1"}


def hooks(settings, tmp_path, *args: str, **env: str):
    from tests.api.loyalty_factories import loyalty_cli

    return loyalty_cli(["webhooks", *args], tmp_path, settings.database_url, **env)


async def test_an_operator_registers_runs_and_reads_a_partners_webhook(api, tmp_path):
    await partners.add_partner("HOTELCO", "Hotel Co")
    receiver = Receiver().start()
    try:
        made = hooks(api.settings, tmp_path, "set", "HOTELCO", "--url", receiver.url, **HTTP_OK)
        assert made.returncode == 0, made.stderr
        listed_line, secret_line = made.stdout.splitlines()
        assert re.fullmatch(r"HOTELCO +ACTIVE +after event \d+ +" + re.escape(receiver.url), listed_line)
        receiver.secret = secret_line.rsplit(" ", 1)[1]
        assert receiver.secret.startswith("whsec_")

        member = await enroll(api, "PEK01")
        for tier in ("SILVER", "GOLD"):
            await set_tier(api, member, tier)
        done = hooks(api.settings, tmp_path, "run", "--once")
        assert done.returncode == 0, done.stderr
        assert re.fullmatch(r"webhook HOTELCO: 2 delivered, at event \d+\n", done.stdout)
        assert done.stderr.splitlines()[-1] == "webhooks: 2 delivered to 1 partner(s), 0 failed attempt(s)"
        assert len(receiver.delivered()) == 2 and all(r.verified for r in receiver.received)
        assert [r.body["data"]["tierChanged"]["toTier"] for r in receiver.received] == ["SILVER", "GOLD"]

        log = hooks(api.settings, tmp_path, "log", "HOTELCO")
        assert [line.split(" event ")[1].split(" ", 3)[1:3] for line in log.stdout.splitlines()] == [["attempt", "1"]] * 2
        assert all(line.endswith("delivered") for line in log.stdout.splitlines())

        assert hooks(api.settings, tmp_path, "pause", "HOTELCO").stdout.split()[1] == "PAUSED"
        await set_tier(api, member, "SILVER")
        assert hooks(api.settings, tmp_path, "run", "--once").stdout == ""  # paused: nothing
        assert hooks(api.settings, tmp_path, "resume", "HOTELCO").stdout.split()[1] == "ACTIVE"
        assert "1 delivered" in hooks(api.settings, tmp_path, "run", "--once").stdout
        assert len(receiver.delivered()) == 3

        today = datetime.now(api.settings.tz).date()
        kept = hooks(api.settings, tmp_path, "prune", "--before", today.isoformat())
        assert kept.stdout == f"webhooks prune before {today}: 0 delivery attempt(s) removed\n"
        tomorrow = (today + timedelta(days=1)).isoformat()
        dry = hooks(api.settings, tmp_path, "prune", "--before", tomorrow, "--dry-run")
        assert dry.stdout == f"webhooks prune before {tomorrow}: 3 delivery attempt(s) removed (dry run: nothing written)\n"
        gone = hooks(api.settings, tmp_path, "prune", "--before", tomorrow)
        assert gone.stdout == f"webhooks prune before {tomorrow}: 3 delivery attempt(s) removed\n"
        assert "webhooks prune: [####################] 3/3 (100%)" in gone.stderr
        assert hooks(api.settings, tmp_path, "log", "HOTELCO").stdout == ""

        rotated = hooks(api.settings, tmp_path, "rotate-secret", "HOTELCO")
        new_secret = rotated.stdout.splitlines()[1].rsplit(" ", 1)[1]
        assert new_secret.startswith("whsec_") and new_secret != receiver.secret
        assert new_secret not in hooks(api.settings, tmp_path, "list").stdout
    finally:
        receiver.stop()


async def test_webhook_mistakes_are_one_line(api, tmp_path):
    await partners.add_partner("HOTELCO", "Hotel Co")
    assert one_line_error(hooks(api.settings, tmp_path, "set", "NOPE", "--url", "https://example.com/x"), 1) == "loyalty: no partner NOPE"
    assert one_line_error(hooks(api.settings, tmp_path, "set", "HOTELCO", "--url", "http://127.0.0.1:9/x"), 1) == (
        "loyalty: url must start with https://"
    )
    assert one_line_error(hooks(api.settings, tmp_path, "resume", "HOTELCO"), 1) == (
        "loyalty: partner HOTELCO has no webhook: set one first"
    )
    assert hooks(api.settings, tmp_path, "set", "HOTELCO", "--url", "https://example.com/x").returncode == 0
    assert one_line_error(hooks(api.settings, tmp_path, "resume", "HOTELCO", "--after", "nope"), 1) == (
        "loyalty: after is not a tierChanges cursor"
    )
    assert one_line_error(hooks(api.settings, tmp_path, "log", "HOTELCO", "--limit", "0"), 1) == (
        "loyalty: --limit 0 must be between 1 and 100"
    )
    assert "invalid choice" in one_line_error(run(api.settings, tmp_path, "webhooks", "frobnicate"), 2)


async def test_sigterm_lets_the_delivery_in_flight_finish_and_exits_0(api, tmp_path):
    """`loyalty webhooks run` stopped by an orchestrator while a partner's endpoint is
    answering: that delivery completes and is logged, the next event waits for the
    next dispatcher; exit 0 with one line on stderr."""
    await partners.add_partner("HOTELCO", "Hotel Co")
    receiver = Receiver(hold=threading.Event()).start()
    try:
        made = hooks(api.settings, tmp_path, "set", "HOTELCO", "--url", receiver.url, **HTTP_OK)
        receiver.secret = made.stdout.splitlines()[1].rsplit(" ", 1)[1]
        member = await enroll(api, "PEK01")
        for tier in ("SILVER", "GOLD"):
            await set_tier(api, member, tier)
        args = ["webhooks", "run", "--every", "3600"]
        # The held answer must not time out however slow the machine: 60 s, not the default 5.
        patient = {**HTTP_OK, "LOYALTY_WEBHOOK_TIMEOUT_SECONDS": "60"}
        async with running_cli(args, tmp_path, api.settings.database_url, **patient) as child:
            assert await asyncio.to_thread(receiver.arrived.wait, 30)  # the first event's POST is in flight
            child.send_signal(signal.SIGTERM)
            err = await lines_until(child.stderr, "stopping", seconds=30)  # the signal was handled
            receiver.hold.set()
            out, rest = await finished(child)
        assert child.returncode == 0, err + rest
        assert [line for line in (err + rest).splitlines() if "stopping" in line] == [
            "webhooks: stopping after the deliveries in flight (SIGTERM; again to stop at once)"]
        assert re.fullmatch(r"webhook HOTELCO: 1 delivered, at event \d+\n", out)
        assert len(receiver.delivered()) == 1 and receiver.received[0].body["data"]["tierChanged"]["toTier"] == "SILVER"
        log = hooks(api.settings, tmp_path, "log", "HOTELCO")
        assert len(log.stdout.splitlines()) == 1 and log.stdout.endswith("delivered\n")
    finally:
        receiver.hold.set()
        receiver.stop()
