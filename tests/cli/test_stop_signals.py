"""`api.cli._stop_on_signals`, which `loyalty scheduler` and `loyalty webhooks run` stop
by: a second SIGTERM or Ctrl-C stops at once even when the loop is busy with a batch
(tests/cli/signal_probe.py raises the signals itself, so the order is exact)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("signal_probe.py")
FIRST = "probe: stopping after the current batch (SIGTERM; again to stop at once)"
AGAIN = "probe: stopping now (SIGTERM again)"


def probe(case: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PROBE), case], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("case", ["together", "busy"])
def test_a_second_signal_stops_at_once_even_while_the_loop_is_busy(case):
    done = probe(case)
    assert done.returncode == -signal.SIGTERM, done.stdout + done.stderr
    assert done.stderr.splitlines() == [FIRST, AGAIN]
    if case == "busy":  # the plain handler ran before the batch's next line
        assert done.stdout == ""
    else:  # both were read by the loop when the batch yielded
        assert done.stdout == "still running\n"
