"""`loyalty serve` stopped by an orchestrator (SIGTERM): uvicorn shuts down gracefully,
then `serve` cleans up after itself (the metrics directory it made for its workers)
and exits 0, with one worker or several."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys

import pytest

from tests.api.loyalty_factories import cli_environment


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_shuts_the_server_down_cleans_up_and_exits_0(db, tmp_path, workers):
    # TMPDIR: the metrics directory of several workers is made (and must be removed) here.
    env = cli_environment(db.database_url, TMPDIR=str(tmp_path), LOYALTY_METRICS="1")
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api.cli", "serve", "--demo", "--port", str(free_port()), "--workers", str(workers),
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines = []
    try:
        async with asyncio.timeout(60):
            while sum("Application startup complete" in line for line in lines) < workers:
                lines.append((await child.stderr.readline()).decode())
                assert lines[-1], "".join(lines)
        if workers > 1:
            assert [p.name[:16] for p in tmp_path.glob("loyalty-metrics-*")] == ["loyalty-metrics-"]
        child.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            _, rest = await child.communicate()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    err = "".join(lines) + rest.decode()
    assert child.returncode == 0, err
    assert err.count("Application shutdown complete") == workers
    assert list(tmp_path.glob("loyalty-metrics-*")) == []
