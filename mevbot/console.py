"""What the long-running commands share: where logs go, stopping on signals, the dashboard."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable

from mevbot.logfmt import EventFormatter
from mevbot.status import BotStatus

# The layers under the app log under their own package names (``execution.relay``...).
LAYERS = ("chain", "watcher", "simulation", "execution", "strategies", "keepers")


class _ToApp(logging.Handler):
    """Hands a layer's record to the ``mevbot`` logger's handlers: formatted like the app's own
    lines, in the dashboard's log tail, never bare on stderr (Python's last-resort handler)."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger("mevbot").handle(record)


def log_output(no_tui: bool) -> None:
    """INFO and up from mevbot and its layers; with ``--no-tui`` as structured lines on stderr
    (with the dashboard, the bot's own log tail shows them instead)."""
    root = logging.getLogger("mevbot")
    root.setLevel(logging.INFO)
    for name in LAYERS:
        layer = logging.getLogger(name)
        layer.setLevel(logging.INFO)
        layer.addHandler(_ToApp())
    if no_tui:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(EventFormatter())
        root.addHandler(handler)


def stop_event() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (call inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


@contextlib.asynccontextmanager
async def dashboard(snapshot: Callable[[], BotStatus] | None) -> AsyncIterator[None]:
    """Run the terminal UI on ``snapshot`` while the block runs (nothing when None)."""
    from mevbot.tui import Dashboard

    task = None if snapshot is None else asyncio.create_task(Dashboard(snapshot).run())
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
