"""The `loyalty` command (OPERATIONS.md). Operator mistakes end in one line on
stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from api.auth import MAX_LIFETIME_SECONDS
from api.settings import Settings, SettingsError, load_settings
from members.contacts import ContactKeyError

EXIT_USAGE = 2
EXIT_FAILURE = 1


class OperatorError(Exception):
    """A mistake the operator can fix; printed as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (its default prints the usage block too). Sub-command
    parsers are of the same class (argparse's default parser_class)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _ttl(value: str) -> int:
    match = re.fullmatch(r"(\d+)([smhd]?)", value.strip())
    if not match or int(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration like 90s, 15m, 1h or 7d")
    seconds = int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    if seconds > MAX_LIFETIME_SECONDS:
        raise argparse.ArgumentTypeError(f"{value!r} is longer than a token may live ({MAX_LIFETIME_SECONDS // 86400}d)")
    return seconds


def _today(settings: Settings) -> date:
    return settings.today()


def _job_day(settings: Settings, args: argparse.Namespace) -> date:
    """The day a dated job runs for: --as-of, or today. A later day than today (in the
    programme's time zone) acts early (downgrades tiers still held, expires miles still
    valid), so it is refused unless --allow-future says so; a dry run may preview it."""
    today = _today(settings)
    as_of = args.as_of or today
    if as_of > today and not (args.allow_future or args.dry_run):
        raise OperatorError(
            f"--as-of {as_of} is after today ({today} in {settings.timezone}): the job would act early; "
            "preview it with --dry-run, or pass --allow-future to run it anyway"
        )
    return as_of


def _dry(args: argparse.Namespace) -> str:
    return " (dry run: nothing written)" if args.dry_run else ""


class Progress:
    """A one-line progress bar on stderr for long jobs."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.tty = sys.stderr.isatty()
        self._last = -1

    def __call__(self, done: int, total: int) -> None:
        percent = 100 if total <= 0 else int(done * 100 / total)
        if percent == self._last and done != total:
            return
        self._last = percent
        bar = "#" * (percent // 5)
        line = f"{self.label}: [{bar:<20}] {done}/{total} ({percent}%)"
        if self.tty:
            print("\r" + line, end="\n" if done >= total else "", file=sys.stderr, flush=True)
        elif percent % 25 == 0 or done >= total:
            print(line, file=sys.stderr, flush=True)


def _check_sqlite_file(settings: Settings, *, create: bool = False) -> None:
    """One line for an SQLite file that cannot be opened. Tried here, synchronously: the
    driver opens it in a worker thread, and on failure Tortoise's migration runner waits
    forever and the thread prints a traceback after the event loop has closed.

    A relative path is relative to the current directory. Only the commands that make a
    database (`migrate`, `demo`: ``create``) may create the file; every other command
    refuses a file that is not there, so running one from another directory never
    leaves a stray empty loyalty.db behind."""
    import sqlite3
    from pathlib import Path
    from urllib.parse import quote

    url = settings.database_url
    if not url.startswith("sqlite://"):
        return
    path = url.removeprefix("sqlite://").split("?", 1)[0]
    if not path or path == ":memory:":
        return
    absolute = Path(path).absolute()
    if not create and not absolute.is_file():
        raise OperatorError(
            f"cannot open the SQLite database {absolute}: no such file (run `loyalty migrate` to create it, "
            "or set DATABASE_URL; a relative path is relative to the current directory)"
        )
    try:
        sqlite3.connect(f"file:{quote(str(absolute))}?mode={'rwc' if create else 'rw'}", uri=True).close()
    except sqlite3.Error as error:
        raise OperatorError(f"cannot open the SQLite database {absolute}: {error}") from None


async def _with_orm(settings: Settings, work: Callable[[], Awaitable[Any]]) -> Any:
    from tortoise import Tortoise

    from api.db import init_orm

    _check_sqlite_file(settings)
    await init_orm(settings)
    try:
        return await work()
    finally:
        await Tortoise.close_connections()


def _rules(settings: Settings):
    from loyalty.rules import load_rules

    return load_rules(settings.rules_path)


# ---- commands --------------------------------------------------------------------


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from tortoise import Tortoise

    from api.db import migrate

    async def run() -> None:
        try:
            await migrate(settings, progress=lambda line: print(line, file=sys.stderr))
        finally:
            await Tortoise.close_connections()

    _check_sqlite_file(settings, create=True)
    asyncio.run(run())
    _warn_demo_keys(settings)
    print("migrations applied; region data loaded")
    return 0


def _check_database(settings: Settings) -> None:
    """Fail early with one line when the database is unreachable or not migrated."""
    from api.db import pending_migrations

    pending = asyncio.run(_with_orm(settings, lambda: pending_migrations(settings)))
    if pending:
        raise OperatorError(f"database needs migrations ({', '.join(pending)}): run `loyalty migrate`")


# How `serve` runs uvicorn (tests/live.py serves the same way). Tier-change messages are a
# few hundred bytes: per-message compression would cost CPU for every subscriber of
# every event and save little, so it is off.
# ws_max_size: WebSocket frames over the request body limit are refused by uvicorn itself.
# access_log: off; the app logs one line per request itself (api.request_log), with its id.
UVICORN_OPTIONS = {
    "lifespan": "on", "ws_per_message_deflate": False, "ws_max_size": Settings.max_body_bytes, "access_log": False,
}


def _check_port(host: str, port: int) -> None:
    """One line when the address cannot be listened on (a busy port, a host that is not
    this machine's), tried with a socket bound and closed at once, as uvicorn binds it."""
    import errno
    import socket

    if not 0 <= port < 65536:
        raise OperatorError(f"--port {port} is not a port number (0-65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise OperatorError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise OperatorError(
                    f"port {port} on {host} is already in use (another server?): choose another with --port "
                    "(make run PORT=...)"
                ) from None
            raise OperatorError(f"cannot listen on {host}:{port}: {error.strerror}") from None


class _Terminated(Exception):
    """SIGTERM reached `serve` itself (see _serve)."""


def _terminated(signum, frame) -> None:
    raise _Terminated


def _serve(settings: Settings, host: str, port: int, workers: int) -> int:
    import uvicorn

    if settings.demo:
        os.environ["LOYALTY_DEMO"] = "1"
    else:
        settings.require_secret()
    _check_port(host, port)
    _rules(settings)  # a bad rules file is one line here, not an error inside uvicorn
    _check_database(settings)
    _warn_demo_keys(settings)
    from api.metrics import prepare_multiprocess_dir, remove_multiprocess_dir

    metrics_dir = prepare_multiprocess_dir(workers) if settings.metrics else None
    print(f"serving GraphQL on http://{host}:{port}/graphql", file=sys.stderr)
    # uvicorn (one worker) shuts down gracefully on SIGTERM, then raises the signal again
    # with the handler it found in place: the default one would end the process right
    # there, past the `finally`. This one makes it an exception: the cleanup runs and the
    # stop exits 0, as `--workers N` (whose supervisor returns) and the other commands do.
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        uvicorn.run("api.asgi:app", host=host, port=port, workers=workers, log_level="info", **UVICORN_OPTIONS)
    except _Terminated:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        remove_multiprocess_dir(metrics_dir)
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    if args.demo:
        settings = settings.with_demo()
    if args.scheduler:
        os.environ["LOYALTY_SCHEDULER"] = "1"  # read by api.asgi in every worker
    if args.webhooks:
        os.environ["LOYALTY_WEBHOOKS"] = "1"  # read by api.asgi in every worker
    return _serve(settings, args.host, args.port, args.workers)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from api.demo import build_demo
    from api.db import migrate

    settings = settings.with_demo()
    if not settings.database_url.startswith("sqlite://") and not args.allow_server_database:
        raise OperatorError("demo writes invented members; use it on SQLite, or pass --allow-server-database")
    if not args.no_serve:
        _check_port(args.host, args.port)  # before minutes of work, not after
    _check_sqlite_file(settings, create=True)

    async def run() -> dict[str, Any]:
        from tortoise import Tortoise

        try:
            await migrate(settings, progress=lambda line: print(line, file=sys.stderr))
            return await build_demo(settings, args.members, rules=_rules(settings), today=_today(settings), progress=Progress("demo members"),
                                    care_progress=Progress("care refresh (offices)"))
        finally:
            await Tortoise.close_connections()

    summary = asyncio.run(run())
    print(summary["summary"], file=sys.stderr)
    print("\nDemo tokens (valid 24 h; paste one as the Authorization header, value 'Bearer <token>'):")
    for role, token in summary["tokens"].items():
        print(f"  {role:<8} {token}")
    print()
    if args.no_serve:
        return 0
    return _serve(settings, args.host, args.port, 1)


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    from api.auth import mint_token
    from members.access import SCOPED_ROLES, Role

    if args.demo:
        settings = settings.with_demo()  # the secret `loyalty demo` / `serve --demo` sign and check with

    role = Role(args.role)
    if role in SCOPED_ROLES and not args.scope:
        article = "an" if role is Role.OFFICE else "a"
        raise OperatorError(f"{article} {role.value} token needs --scope ({article} {role.value} code)")
    if role is Role.MEMBER and not args.sub:
        raise OperatorError("a member token needs --sub MEMBER_ID")
    print(mint_token(settings, role, args.sub or f"{role.value}-cli", args.scope, args.ttl))
    return 0


def cmd_schema(settings: Settings, args: argparse.Namespace) -> int:
    from schema.build import build_schema

    print(build_schema().as_str())
    return 0


def _service_command(settings: Settings, work: Callable[[], Awaitable[None]]) -> int:
    """Run ``work`` with the ORM up; a service's refusal (DomainError) is the operator's one line."""
    from members.errors import DomainError

    async def run() -> int:
        try:
            await work()
        except DomainError as error:
            raise OperatorError(error.message) from None
        return 0

    return asyncio.run(_with_orm(settings, run))


def cmd_partner(settings: Settings, args: argparse.Namespace) -> int:
    from members import partners

    async def run() -> None:
        if args.partner_command == "add":
            partner, created = await partners.add_partner(args.code, args.name)
            print(f"{'registered' if created else 'already registered'}: {partner.code} {partner.name}")
        elif args.partner_command == "disable":
            partner = await partners.disable_partner(args.code)
            print(f"disabled: {partner.code} {partner.name}")
        elif args.partner_command == "statement":
            from api import bulk

            try:
                entries, miles = await bulk.export_statement(
                    sys.stdout, args.code, args.start, args.end, settings.tz, Progress("partner statement")
                )
            except bulk.CsvFileError as error:
                raise OperatorError(str(error)) from None
            print(f"partner statement: {entries} entries, {miles:,} miles", file=sys.stderr)
        else:
            rows = await partners.list_partners()
            for partner in rows:
                print(f"{partner.code:<12} {'active  ' if partner.active else 'disabled'} {partner.name}")
            print(f"{len(rows)} partner(s)", file=sys.stderr)

    return _service_command(settings, run)


def cmd_tiers_review(settings: Settings, args: argparse.Namespace) -> int:
    from loyalty.tiers import review_tiers

    as_of = _job_day(settings, args)
    rules = _rules(settings)
    summary = asyncio.run(_with_orm(settings, lambda: review_tiers(
        as_of, rules=rules, progress=Progress("review"), dry_run=args.dry_run)))
    if summary.events and settings.redis_url and not args.dry_run:
        from loyalty.feed import announce_to_servers

        asyncio.run(announce_to_servers(settings.redis_url))  # tierChanged subscribers get them at once
    print(
        f"tiers review as of {as_of}: {summary.examined} examined, {summary.retained} retained, "
        f"{summary.downgraded} downgraded, {summary.events} tier changes{_dry(args)}"
    )
    if args.dry_run:
        for card, before, after in summary.sample:
            print(f"  {card}: {before.name} -> {after.name}")
    return 0


def cmd_miles_expire(settings: Settings, args: argparse.Namespace) -> int:
    from loyalty.jobs import expire_miles

    as_of = _job_day(settings, args)
    summary = asyncio.run(_with_orm(settings, lambda: expire_miles(as_of, progress=Progress("expiry"), dry_run=args.dry_run)))
    print(f"miles expire as of {as_of}: {summary.miles} miles expired in {summary.entries} entries "
          f"for {summary.members} members{_dry(args)}")
    if args.dry_run:
        for card, miles in summary.sample:
            print(f"  {card}: {miles} miles")
    return 0


def cmd_ledger_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    from loyalty.jobs import reconcile

    checked, differences = asyncio.run(_with_orm(settings, lambda: reconcile(progress=Progress("reconcile"))))
    for d in differences:
        print(f"DIFFERENCE {d.card_number}: balance {d.balance}, ledger sum {d.ledger_sum}, lots {d.lots_sum}")
    print(f"ledger reconcile: {checked} members checked, {len(differences)} difference(s)")
    return 1 if differences else 0


def cmd_care_refresh(settings: Settings, args: argparse.Namespace) -> int:
    from care.calls import refresh_care_due
    from care.segments import refresh_segments

    as_of = _job_day(settings, args)
    rules = _rules(settings)
    if args.dry_run and args.rebuild_worklist:
        raise OperatorError("--rebuild-worklist writes every elite member's state; it has no dry run")

    async def run():
        if args.rebuild_worklist:
            from loyalty.changes import refresh_members
            from members.enums import Tier
            from members.models import Member

            elite = await Member.filter(tier__gt=Tier.STANDARD).order_by("id").values_list("id", flat=True)
            await refresh_members(elite, rules, as_of)
        due = await refresh_care_due(rules, as_of, Progress("care refresh (worklist)"), dry_run=args.dry_run)
        return due, await refresh_segments(rules, as_of, Progress("care refresh"), timezone=settings.tz, dry_run=args.dry_run)

    due, summary = asyncio.run(_with_orm(settings, run))
    stages = ", ".join(f"{n} {stage.value}" for stage, n in summary.stages.items())
    segments = ", ".join(f"{n} {segment.value}" for segment, n in summary.segments.items())
    print(f"care worklist as of {as_of}: {due.members} members rechecked, {due.due} of them due a call{_dry(args)}")
    changed = f"; {summary.changed} would change" if args.dry_run else ""
    print(f"care refresh as of {as_of}: {summary.members} members in {summary.offices} offices; {stages}; {segments}"
          f"{changed}{_dry(args)}")
    if args.dry_run:
        for card, before, after in summary.sample:
            print(f"  {card}: {'/'.join(str(b) for b in before)} -> {'/'.join(after)}")
    return 0


# What stops a long-running command (`scheduler`, `webhooks run`) cleanly: an operator's
# Ctrl-C, an orchestrator's stop (systemd, Docker, Kubernetes send SIGTERM).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _stop_on_signals(stop: asyncio.Event, name: str, what: str) -> None:
    """On the first SIGTERM or SIGINT: one line on stderr and ``stop`` set, so the command
    ends at its next safe point (``what``, e.g. "the current batch") and exits 0. On a
    second one: at once, killed by that signal, as if no handler were installed (the
    database rolls back the transaction in flight; runs and leases are taken over when
    their lease lapses). Call inside the command's event loop, as early as possible."""
    loop = asyncio.get_running_loop()

    def at_once(signum: int, frame=None) -> None:
        for each in STOP_SIGNALS:
            signal.signal(each, signal.SIG_DFL)
        print(f"{name}: stopping now ({signal.Signals(signum).name} again)", file=sys.stderr, flush=True)
        signal.raise_signal(signum)

    def first(signum: int) -> None:
        if stop.is_set():  # two signals came before the loop read either: the second is "again"
            at_once(signum)
            return
        print(f"{name}: stopping after {what} ({signal.Signals(signum).name}; again to stop at once)",
              file=sys.stderr, flush=True)
        stop.set()
        # The second signal must act even while a batch keeps the loop busy, so it gets a
        # plain handler, which the interpreter runs between two bytecodes of this thread;
        # the loop only reads its wake-up byte when the batch yields.
        for each in STOP_SIGNALS:
            signal.signal(each, at_once)

    for each in STOP_SIGNALS:
        loop.add_signal_handler(each, first, each)


def cmd_scheduler(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from api.db import ping
    from api.scheduler import Scheduler

    rules = _rules(settings)
    if args.catch_up_days < 1:
        raise OperatorError("--catch-up-days must be at least 1")

    def report(line: str) -> None:
        print(line, flush=True)

    async def run() -> int:
        # A signal ends the job under way at its next checkpoint (between two batches:
        # its run is given back and resumed by the next scheduler) and skips the rest.
        stop = asyncio.Event()
        _stop_on_signals(stop, "scheduler", "the current batch")
        await ping()
        from api.metrics import scheduler_run

        scheduler = Scheduler(settings, rules, catch_up_days=args.catch_up_days,
                              lease=timedelta(seconds=args.lease), retry_after=timedelta(seconds=args.retry_after),
                              on_run=scheduler_run if settings.metrics else None)
        if args.once:
            records = await scheduler.tick(stop)
            for record in records:
                report(record.line())
            print(f"scheduler: {len(records)} run(s) up to {settings.today()}", file=sys.stderr)
            return 1 if any(record.status.value == "FAILED" for record in records) else 0
        print(f"scheduler {scheduler.owner}: the daily jobs every programme day ({settings.timezone}), "
              f"checking every {args.every:g}s", file=sys.stderr)
        await scheduler.run_forever(args.every, stop=stop, report=report)
        return 0

    return asyncio.run(_with_orm(settings, run))


def _webhook_line(row) -> str:
    from loyalty.models import WebhookStatus

    state = row.status.value
    if row.status is WebhookStatus.ACTIVE and row.failures:
        state += f" ({row.failures} failed, next attempt {row.next_attempt_at:%Y-%m-%d %H:%M:%S}Z)"
    line = f"{row.partner.code:<12} {state:<8} after event {row.cursor:<8} {row.url}"
    return line + (f"  last error: {row.last_error}" if row.last_error else "")


def cmd_webhooks(settings: Settings, args: argparse.Namespace) -> int:
    from loyalty import webhooks

    action = args.webhooks_command
    if action == "run":
        return _run_webhooks(settings, args)
    if action == "log" and not 1 <= args.limit <= 100:
        raise OperatorError(f"--limit {args.limit} must be between 1 and 100")

    async def run() -> None:
        now = settings.now()
        if action == "set":
            row, secret = await webhooks.set_webhook(args.code, args.url, now=now, allow_http=settings.webhook_allow_http)
            print(_webhook_line(row))
            if secret is not None:
                print(f"secret (shown once; the receiver checks signatures with it): {secret}")
        elif action == "rotate-secret":
            row, secret = await webhooks.rotate_secret(args.code, now=now)
            print(_webhook_line(row))
            print(f"new secret (shown once; the next delivery is signed with it): {secret}")
        elif action == "pause":
            print(_webhook_line(await webhooks.pause(args.code, now=now)))
        elif action == "resume":
            print(_webhook_line(await webhooks.resume(args.code, now=now, after=args.after)))
        elif action == "prune":
            from datetime import datetime, time, timezone

            cutoff = datetime.combine(args.before, time(0), settings.tz).astimezone(timezone.utc)
            removed = await webhooks.prune_deliveries(cutoff, dry_run=args.dry_run, progress=Progress("webhooks prune"))
            print(f"webhooks prune before {args.before}: {removed} delivery attempt(s) removed{_dry(args)}")
        elif action == "log":
            page = await webhooks.deliveries(args.code, args.limit, None)
            for d in page.items:
                outcome = "delivered" if d.delivered else f"FAILED {d.error or ''}".rstrip()
                print(f"{d.at:%Y-%m-%d %H:%M:%S}Z event {d.event_id} attempt {d.attempt} "
                      f"status {d.status_code or '-'} {d.duration_ms} ms {outcome}")
            print(f"{len(page.items)} attempt(s), newest first", file=sys.stderr)
        else:
            rows = await webhooks.list_webhooks()
            for row in rows:
                print(_webhook_line(row))
            print(f"{len(rows)} webhook(s)", file=sys.stderr)

    return _service_command(settings, run)


def _run_webhooks(settings: Settings, args: argparse.Namespace) -> int:
    from api.db import ping
    from api.webhooks import dispatcher

    rules = _rules(settings)
    every = args.every or settings.webhook_poll_seconds

    def report(line: str) -> None:
        print(line, flush=True)

    async def run() -> int:
        # A signal lets the requests in flight finish (each within the webhook timeout)
        # and be logged, and starts no other.
        stop = asyncio.Event()
        _stop_on_signals(stop, "webhooks", "the deliveries in flight")
        await ping()
        async with dispatcher(settings, rules) as running:
            if not args.once:
                print(f"webhooks {running.owner}: delivering tier changes to partners' webhooks, "
                      f"looking every {every:g}s", file=sys.stderr)
                await running.run_forever(every, stop=stop, report=report)
                return 0
            delivered, failed, partners = 0, 0, set()
            while not stop.is_set():  # everything due now, a batch per partner per turn
                outcomes = await running.tick(stop)
                for outcome in outcomes:
                    report(outcome.line())
                    delivered += outcome.delivered
                    failed += outcome.failed is not None
                    partners.add(outcome.partner)
                if not any(o.delivered >= running.policy.batch and not o.failed for o in outcomes):
                    break
            print(f"webhooks: {delivered} delivered to {len(partners)} partner(s), {failed} failed attempt(s)", file=sys.stderr)
            return 0

    return asyncio.run(_with_orm(settings, run))


def _positive_number(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0
    if not 0 < number < float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number")
    return number


def _positive_whole(value: str) -> int:
    if not value.isdigit() or int(value) == 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return int(value)


def _import_command(kind: str):
    def command(settings: Settings, args: argparse.Namespace) -> int:
        from pathlib import Path

        from api import bulk

        path = Path(args.file)
        rejects = Path(args.rejects) if args.rejects else bulk.rejects_path_for(path)
        today = _today(settings)
        progress = Progress(f"import {kind}")
        try:
            # The file is checked (and its rows counted) before the database is opened.
            checked = bulk.read_header(path, bulk.MEMBER_REQUIRED if kind == "members" else bulk.ACTIVITY_REQUIRED)
            if kind == "members":
                work = lambda: bulk.import_members(path, rejects, today=today, progress=progress, checked=checked)  # noqa: E731
            else:
                rules = _rules(settings)
                work = lambda: bulk.import_activities(  # noqa: E731
                    path, rejects, rules=rules, today=today, progress=progress, checked=checked)
            summary = asyncio.run(_with_orm(settings, work))
        except bulk.CsvFileError as error:
            raise OperatorError(str(error)) from None
        except OSError as error:
            if error.filename is None or str(error.filename) != str(rejects):
                raise
            raise OperatorError(f"cannot write the rejected rows to {rejects}: {error.strerror}") from None
        line = f"import {kind}: {summary.taken} taken, {summary.present} already present, {summary.rejected} rejected"
        print(line + (f" (see {rejects})" if summary.rejected else ""))
        return 0

    return command


def cmd_export_members(settings: Settings, args: argparse.Namespace) -> int:
    from api import bulk

    try:
        count = asyncio.run(_with_orm(settings, lambda: bulk.export_members(sys.stdout, args.office, Progress("export members"))))
    except bulk.CsvFileError as error:
        raise OperatorError(str(error)) from None
    print(f"export members: {count} members", file=sys.stderr)
    return 0


def cmd_access_prune(settings: Settings, args: argparse.Namespace) -> int:
    """`loyalty access prune [--before DATE] [--dry-run]`: the access audit's retention."""
    from datetime import datetime, time, timedelta, timezone

    from members.access_log import prune_access

    today = _today(settings)
    before = args.before or today - timedelta(days=settings.access_log_days)
    if before > today:
        raise OperatorError(f"--before {before} is after today ({today} in {settings.timezone}): "
                            "it would delete today's reads")

    async def run() -> int:
        cutoff = datetime.combine(before, time(0), settings.tz).astimezone(timezone.utc)
        removed = await prune_access(cutoff, dry_run=args.dry_run, progress=Progress("access prune"))
        print(f"access prune before {before}: {removed} access row(s) removed{_dry(args)}")
        return 0

    return asyncio.run(_with_orm(settings, run))


def cmd_member(settings: Settings, args: argparse.Namespace) -> int:
    """`loyalty member export|erase CARD_OR_ID`: one member's data as JSON on stdout, or
    the erasure of their personal data (docs/PRIVACY.md), as an admin ("admin:cli")."""
    import json
    from datetime import datetime, timezone

    from members.access import Caller, Role
    from members.errors import DomainError
    from members.queries import find_member

    caller = Caller(Role.ADMIN, "cli")

    async def run() -> int:
        value = args.member.strip()
        by_card = value.upper().startswith("CA")
        try:
            member = await find_member(caller, **({"card_number": value} if by_card else {"member_id": value}))
            if member is None:
                raise OperatorError(f"no member {value}")
            now = datetime.now(timezone.utc)
            if args.member_command == "export":
                from privacy.export import export_member

                document = await export_member(member, now=now)
                json.dump(document, sys.stdout, ensure_ascii=False, indent=2)
                print()
                print(f"member export: {member.card_number}, {len(document['ledger'])} ledger entries", file=sys.stderr)
            else:
                from privacy.erasure import erase_member

                erased = await erase_member(caller, member.id, args.reason, now=now)
                when = erased.erasure.erased_at.isoformat()
                print(f"{'erased' if erased.erased_now else 'already erased'}: {member.card_number} "
                      f"(at {when} by {erased.erasure.actor})")
        except DomainError as error:
            raise OperatorError(error.message) from None
        return 0

    return asyncio.run(_with_orm(settings, run))


def cmd_keys_new(settings: Settings, args: argparse.Namespace) -> int:
    from members.contacts import new_key

    print(new_key())
    return 0


def cmd_members_reencrypt(settings: Settings, args: argparse.Namespace) -> int:
    from members.contact_rotation import reseal_contacts

    keys = settings.contact_keys()
    done = asyncio.run(_with_orm(settings, lambda: reseal_contacts(batch=args.batch, progress=Progress("members reencrypt"))))
    _warn_demo_keys(settings)
    print(f"members reencrypt: {done.members} members with a phone or email, {done.rewritten} rewritten "
          f"(data key {keys.current_id})")
    return 0


def _warn_demo_keys(settings: Settings) -> None:
    """One line on stderr when phones and emails are sealed with the public demo keys."""
    warning = settings.contact_keys_warning()
    if warning:
        print(f"loyalty: {warning}", file=sys.stderr)


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from api import reports

    today = _today(settings)
    try:
        if args.report_command == "liability":
            as_of, rows, miles = asyncio.run(_with_orm(settings, lambda: reports.export_liability(
                sys.stdout, args.as_of, today)))
            print(f"liability as of {as_of}: {miles:,} miles outstanding in {rows} rows", file=sys.stderr)
        else:
            credited, expired, points = asyncio.run(_with_orm(settings, lambda: reports.export_breakage(
                sys.stdout, args.start, args.end)))
            print(f"breakage {args.start:%Y-%m}..{args.end:%Y-%m}: {expired:,} of {credited:,} credited miles expired "
                  f"({points / 100:.2f} %)", file=sys.stderr)
    except reports.ReportError as error:
        raise OperatorError(str(error)) from None
    return 0


def _signed(number: int) -> str:
    return f"{number:+,}"


def cmd_rules(settings: Settings, args: argparse.Namespace) -> int:
    import getpass
    from pathlib import Path

    from api import reports
    from loyalty.rulechange import change_rules, rules_file_hash
    from loyalty.rules import load_rules

    apply = args.rules_command == "apply"
    new = load_rules(args.file)  # a bad file: one line (RulesError, in main)
    digest = rules_file_hash(args.file)
    current = _rules(settings)
    today = _today(settings)
    if args.sample < 0:
        raise OperatorError("--sample must not be negative")
    try:
        out = open(args.csv, "w", encoding="utf-8", newline="") if args.csv else None
    except OSError as error:
        raise OperatorError(f"cannot write {args.csv}: {error.strerror}") from None
    try:
        each = reports.rules_csv(out) if out is not None else None
        report = asyncio.run(_with_orm(settings, lambda: change_rules(
            new, digest, current=current, today=today, apply=apply, actor=f"cli:{getpass.getuser()}",
            rules_path=str(Path(args.file).absolute()), progress=Progress(f"rules {args.rules_command}"), each=each,
            sample_size=args.sample)))
    finally:
        if out is not None:
            out.close()
    if apply and report.transitions and settings.redis_url:
        from loyalty.feed import announce_to_servers

        asyncio.run(announce_to_servers(settings.redis_url))  # tierChanged subscribers get them at once
    verb = "changed" if apply else "would change"
    transitions = ", ".join(f"{key} {n}" for key, n in sorted(report.transitions.items())) or "none"
    print(
        f"rules {args.rules_command} of {args.file} (sha256 {digest[:16]}) as of {today}: {report.examined} members "
        f"examined, {report.changed} {verb}: {report.entries} adjustment entries, "
        f"{_signed(report.redeemable_miles)} redeemable miles, {_signed(report.qualifying_miles)} qualifying miles, "
        f"{reports.segments(report.qualifying_segments)} segments; tier changes: {transitions}"
        + (f"; {report.kept_flights} flights of fare classes not in the new chart kept" if report.kept_flights else "")
        + ("" if apply else " (preview: nothing written)")
    )
    for d in report.sample:
        tier = f"{d.tier_before} -> {d.tier_after} until {d.valid_until}" if d.tier_after != d.tier_before else d.tier_after
        print(f"  {d.card_number}: {tier}, {_signed(d.redeemable_miles)} miles "
              f"({_signed(d.qualifying_miles)} qualifying, {reports.segments(d.qualifying_segments)} segments) "
              f"on {d.days} day(s)")
    return 0


# ---- parser ----------------------------------------------------------------------


def _dated_job(sub, group: str, group_help: str, action: str, action_help: str, func) -> argparse.ArgumentParser:
    """`loyalty GROUP ACTION [--as-of DATE]`: a daily job that can be run for any day; its parser."""
    parser = sub.add_parser(group, help=group_help)
    actions = parser.add_subparsers(dest=f"{group}_command", required=True, metavar="ACTION")
    job = actions.add_parser(action, help=action_help)
    job.add_argument("--as-of", type=_date, dest="as_of", help="the day to run for (default today, in LOYALTY_TIMEZONE)")
    job.add_argument("--dry-run", action="store_true", dest="dry_run",
                     help="print what would change (counts and the first few members) and write nothing")
    job.add_argument("--allow-future", action="store_true", dest="allow_future",
                     help="run for an --as-of after today (refused otherwise: it would act early)")
    job.set_defaults(func=func)
    return job


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="loyalty", description="Operate the loyalty programme service.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("migrate", help="apply migrations and load the region data").set_defaults(func=cmd_migrate)

    def serve_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)

    serve = sub.add_parser("serve", help="serve /graphql, /healthz and /readyz")
    serve_options(serve)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--demo", action="store_true", help="demo mode: a built-in JWT secret when none is set")
    serve.add_argument("--scheduler", action="store_true",
                       help="also run the daily jobs once per programme day in the server (LOYALTY_SCHEDULER=1; "
                            "or run `loyalty scheduler` beside it)")
    serve.add_argument("--webhooks", action="store_true",
                       help="also deliver partners' webhooks from the server (LOYALTY_WEBHOOKS=1; or run "
                            "`loyalty webhooks run` beside it)")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="migrate, create demo data, print tokens, serve")
    serve_options(demo)
    demo.add_argument("--members", type=int, default=10_000)
    demo.add_argument("--no-serve", action="store_true", help="stop after creating the data and printing tokens")
    demo.add_argument("--allow-server-database", action="store_true", help=argparse.SUPPRESS)
    demo.set_defaults(func=cmd_demo)

    token = sub.add_parser("token", help="print a signed token")
    token.add_argument("--role", required=True, choices=["member", "partner", "office", "branch", "airline", "admin"])
    token.add_argument("--scope", help="office, branch or partner code")
    token.add_argument("--sub", help="subject: the member id for member tokens")
    token.add_argument("--ttl", type=_ttl, default=3600, help="lifetime, e.g. 1h (default), 15m, 7d")
    token.add_argument("--demo", action="store_true",
                       help="sign for a demo server (`make run`, `loyalty demo`, `serve --demo`): its built-in secret "
                            "unless LOYALTY_JWT_SECRET is set")
    token.set_defaults(func=cmd_token)

    sub.add_parser("schema", help="print the GraphQL SDL").set_defaults(func=cmd_schema)

    partner = sub.add_parser("partner", help="the partner registry")
    partner_sub = partner.add_subparsers(dest="partner_command", required=True, metavar="ACTION")
    add = partner_sub.add_parser("add", help="register a partner")
    add.add_argument("code")
    add.add_argument("--name", required=True)
    partner_sub.add_parser("list", help="list partners")
    disable = partner_sub.add_parser("disable", help="disable a partner (its tokens are refused)")
    disable.add_argument("code")
    statement = partner_sub.add_parser("statement", help="a partner's postings over a range of days as CSV, with totals")
    statement.add_argument("code")
    statement.add_argument("--from", type=_date, dest="start", required=True, help="first posting day (YYYY-MM-DD)")
    statement.add_argument("--to", type=_date, dest="end", required=True, help="last posting day (at most 366 days)")
    partner.set_defaults(func=cmd_partner)

    _dated_job(sub, "tiers", "tier jobs", "review", "retention / downgrade for every tier ending before --as-of", cmd_tiers_review)
    _dated_job(sub, "miles", "miles jobs", "expire", "post EXPIRY entries for credits expired before --as-of", cmd_miles_expire)

    ledger = sub.add_parser("ledger", help="ledger jobs")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")
    ledger_sub.add_parser("reconcile", help="prove every balance equals the sum of its ledger").set_defaults(func=cmd_ledger_reconcile)

    care_refresh = _dated_job(sub, "care", "VIP care jobs", "refresh", "write every member's lifecycle stage and value segment, and the worklist state of the members whose recheck day has come, as of --as-of", cmd_care_refresh)
    care_refresh.add_argument(
        "--rebuild-worklist", action="store_true", dest="rebuild_worklist",
        help="first recompute the retention totals and worklist state of every elite member (after an upgrade "
             "adding them, or a change of the rules' tier or care numbers)")

    scheduler = sub.add_parser(
        "scheduler", help="run tiers review, miles expire and care refresh once per programme day (any number of copies)")
    scheduler.add_argument("--once", action="store_true", help="run what is due (catching up missed days) and exit")
    scheduler.add_argument("--every", type=_positive_number, default=60.0, help="seconds between checks (default 60)")
    scheduler.add_argument("--catch-up-days", type=int, default=31, dest="catch_up_days",
                           help="how many missed days to run, at most (default 31)")
    scheduler.add_argument("--lease", type=_positive_number, default=600.0,
                           help="seconds a run's lease lasts without renewal: another copy takes over a crashed run after it (default 600)")
    scheduler.add_argument("--retry-after", type=_positive_number, default=900.0, dest="retry_after",
                           help="seconds before a failed run is tried again (default 900)")
    scheduler.set_defaults(func=cmd_scheduler)

    hooks = sub.add_parser("webhooks", help="partners' webhooks: their tier changes POSTed to them (docs/OPERATIONS.md)")
    hooks_sub = hooks.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")
    hook_set = hooks_sub.add_parser("set", help="register a partner's webhook (prints its secret once) or change its url")
    hook_set.add_argument("code")
    hook_set.add_argument("--url", required=True, help="https URL (http too with LOYALTY_WEBHOOK_ALLOW_HTTP=1)")
    for name, text in (("rotate-secret", "a new signing secret, printed once"),
                       ("pause", "stop delivering until resumed")):
        hooks_sub.add_parser(name, help=text).add_argument("code")
    hook_resume = hooks_sub.add_parser("resume", help="deliver again from the cursor (or --after), at once")
    hook_resume.add_argument("code")
    hook_resume.add_argument("--after", help="a tierChanges cursor to go on from (default the webhook's own)")
    hooks_sub.add_parser("list", help="every webhook and how its delivery stands")
    hook_log = hooks_sub.add_parser("log", help="a partner's latest delivery attempts, newest first")
    hook_log.add_argument("code")
    hook_log.add_argument("--limit", type=int, default=20, help="attempts to show (at most 100; default 20)")
    hook_prune = hooks_sub.add_parser("prune", help="delete the delivery log's attempts made before a day")
    hook_prune.add_argument("--before", type=_date, required=True,
                            help="the first day kept (YYYY-MM-DD, in LOYALTY_TIMEZONE)")
    hook_prune.add_argument("--dry-run", action="store_true", dest="dry_run", help="count them, delete nothing")
    hook_run = hooks_sub.add_parser("run", help="deliver to every partner's webhook (any number of copies)")
    hook_run.add_argument("--once", action="store_true", help="deliver what is due now and exit")
    hook_run.add_argument("--every", type=_positive_number, default=None,
                          help="seconds between looks for work (default LOYALTY_WEBHOOK_POLL_SECONDS, 1)")
    hooks.set_defaults(func=cmd_webhooks)

    imports = sub.add_parser("import", help="bulk load from CSV (see the README for the columns)")
    imports_sub = imports.add_subparsers(dest="import_command", required=True, metavar="WHAT")
    for kind, text in (("members", "enrol members, idempotent by card number"),
                       ("activities", "post flights and partner activities, idempotent by externalRef")):
        action = imports_sub.add_parser(kind, help=text)
        action.add_argument("file", metavar="FILE", help="UTF-8 CSV with a header row")
        action.add_argument("--rejects", metavar="PATH", help="where the rejected rows go (default FILE's name .rejected.csv)")
        action.set_defaults(func=_import_command(kind))

    access = sub.add_parser("access", help="the access audit of members' personal fields (docs/OPERATIONS.md)")
    access_sub = access.add_subparsers(dest="access_command", required=True, metavar="ACTION")
    access_prune = access_sub.add_parser("prune", help="delete the reads older than the retention (LOYALTY_ACCESS_LOG_DAYS)")
    access_prune.add_argument("--before", type=_date, default=None,
                              help="the first day kept (YYYY-MM-DD, in LOYALTY_TIMEZONE; default today minus "
                                   "LOYALTY_ACCESS_LOG_DAYS, 365)")
    access_prune.add_argument("--dry-run", action="store_true", dest="dry_run", help="count them, delete nothing")
    access_prune.set_defaults(func=cmd_access_prune)

    member = sub.add_parser("member", help="one member's personal data (docs/PRIVACY.md)")
    member_sub = member.add_subparsers(dest="member_command", required=True, metavar="ACTION")
    member_export = member_sub.add_parser("export", help="everything held about the member, as JSON on stdout")
    member_export.add_argument("member", metavar="CARD_OR_ID", help="card number (CA...) or member id")
    member_erase = member_sub.add_parser(
        "erase", help="erase the member's personal data (irreversible; card, ledger and balances stay)")
    member_erase.add_argument("member", metavar="CARD_OR_ID", help="card number (CA...) or member id")
    member_erase.add_argument("--reason", required=True, help="why (e.g. the request's reference); audited")
    member.set_defaults(func=cmd_member)
    report = sub.add_parser("report", help="finance reports as CSV to stdout (admin figures)")
    report_sub = report.add_subparsers(dest="report_command", required=True, metavar="WHAT")
    liability = report_sub.add_parser(
        "liability", help="outstanding redeemable miles by expiry month, tier and office, with a totals line")
    liability.add_argument("--as-of", type=_date, dest="as_of",
                           help="count credits good through this day or later (default today; not before today)")
    breakage = report_sub.add_parser(
        "breakage", help="miles credited per credit month and the share of them expired unredeemed so far")
    breakage.add_argument("--from", type=_date, dest="start", required=True, help="a day of the first credit month")
    breakage.add_argument("--to", type=_date, dest="end", required=True, help="a day of the last credit month (at most 120 months)")
    report.set_defaults(func=cmd_report)

    rules = sub.add_parser("rules", help="preview or apply a new rules file over every member's ledger")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    for action, text in (
        ("preview", "what the new rules would change (tiers, re-earned miles), writing nothing"),
        ("apply", "post the differences (ADJUSTMENT entries, RULE_CHANGE tier changes); running it again changes nothing"),
    ):
        command = rules_sub.add_parser(action, help=text)
        command.add_argument("file", metavar="NEW_RULES_FILE", help="the new rules file (TOML, validated like LOYALTY_RULES)")
        command.add_argument("--csv", metavar="PATH", help="write every changed member to this CSV file")
        command.add_argument("--sample", type=int, default=10, help="members to list on the terminal (default 10)")
    rules.set_defaults(func=cmd_rules)

    export = sub.add_parser("export", help="CSV to stdout")
    export_sub = export.add_subparsers(dest="export_command", required=True, metavar="WHAT")
    export_members = export_sub.add_parser("members", help="every member (or one office's) as CSV")
    export_members.add_argument("--office", metavar="CODE")
    export_members.set_defaults(func=cmd_export_members)

    keys = sub.add_parser("keys", help="phone and email encryption keys (docs/OPERATIONS.md)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    keys_sub.add_parser("new", help="print a new random key for LOYALTY_DATA_KEYS or LOYALTY_LOOKUP_KEY").set_defaults(
        func=cmd_keys_new)
    members = sub.add_parser("members", help="member data jobs")
    members_sub = members.add_subparsers(dest="members_command", required=True, metavar="ACTION")
    reencrypt = members_sub.add_parser(
        "reencrypt", help="seal every phone and email with the first data key, hash them with the lookup key")
    reencrypt.add_argument("--batch", type=_positive_whole, default=1000, help="members per transaction (default 1000)")
    reencrypt.set_defaults(func=cmd_members_reencrypt)
    return parser


def _database_error(error: BaseException) -> str | None:
    """One line for a database that cannot be reached, else None."""
    from tortoise.exceptions import DBConnectionError, OperationalError

    names = {"ConnectionRefusedError", "InvalidCatalogNameError", "InvalidPasswordError", "CannotConnectNowError", "gaierror"}
    if isinstance(error, (DBConnectionError, ConnectionError, OSError)) or type(error).__name__ in names:
        return f"cannot reach the database: {error}".splitlines()[0]
    if isinstance(error, OperationalError):
        return f"database error (is it migrated? run `loyalty migrate`): {error}".splitlines()[0]
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # _Parser prints one line and exits 2 itself
    try:
        settings = load_settings()
        return args.func(settings, args)
    except (OperatorError, SettingsError, ContactKeyError) as error:
        print(f"loyalty: {error}", file=sys.stderr)
        return EXIT_USAGE if isinstance(error, SettingsError) else EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001 - operator-facing: one line, not a traceback
        from loyalty.rules import RulesError

        if isinstance(error, RulesError):
            print(f"loyalty: {error}", file=sys.stderr)
            return EXIT_USAGE
        line = _database_error(error)
        if line is None:
            raise
        print(f"loyalty: {line}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
