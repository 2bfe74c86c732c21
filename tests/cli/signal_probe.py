"""A command's stop on signals (`api.cli._stop_on_signals`) with the event loop kept busy,
for tests/cli/test_stop_signals.py: `python tests/cli/signal_probe.py CASE`.

The signals are raised by the process itself, which delivers them before the next line
runs, so the order of signal and busy loop is exact, with no timing:
- ``together``: two SIGTERMs before the loop reads either (a batch holds the loop);
- ``busy``: the first one handled, the second while a batch holds the loop.
Prints "still running" when the second signal did not stop it at once."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from api.cli import _stop_on_signals  # noqa: E402 - after the path


async def main(case: str) -> None:
    stop = asyncio.Event()
    _stop_on_signals(stop, "probe", "the current batch")
    signal.raise_signal(signal.SIGTERM)
    if case == "busy":
        await stop.wait()  # the loop has read the first signal
    signal.raise_signal(signal.SIGTERM)  # the loop is busy: no await between here and the print
    print("still running", flush=True)
    await stop.wait()
    for _ in range(3):  # let the loop read any wake-up byte left
        await asyncio.sleep(0)
    print("exited normally", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
