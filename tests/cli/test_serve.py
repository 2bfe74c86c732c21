"""`loyalty serve` stopped by an orchestrator (SIGTERM): uvicorn shuts down gracefully,
then `serve` cleans up after itself (the metrics directory it made for its workers)
and exits 0, with one worker or several."""

from __future__ import annotations

import signal
import socket

import pytest

from tests.cli.conftest import finished, lines_until, running_cli


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_shuts_the_server_down_cleans_up_and_exits_0(db, tmp_path, workers):
    # TMPDIR: the metrics directory of several workers is made (and must be removed) here.
    args = ["serve", "--demo", "--port", str(free_port()), "--workers", str(workers)]
    async with running_cli(args, tmp_path, db.database_url, TMPDIR=str(tmp_path), LOYALTY_METRICS="1") as child:
        err = await lines_until(child.stderr, "Application startup complete", workers)
        if workers > 1:
            assert [p.name[:16] for p in tmp_path.glob("loyalty-metrics-*")] == ["loyalty-metrics-"]
        child.send_signal(signal.SIGTERM)
        err += (await finished(child))[1]
    assert child.returncode == 0, err
    assert err.count("Application shutdown complete") == workers
    assert list(tmp_path.glob("loyalty-metrics-*")) == []
