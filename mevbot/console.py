"""What the long-running commands share: where logs go, stopping on signals, the dashboard."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable

from mevbot.logfmt import FORMATTERS, log_settings
from mevbot.status import BotStatus

# Our packages' loggers: they log at the chosen level; anything else only from WARNING up.
OUR_LOGGERS = ("mevbot", "keepers", "execution", "watcher", "simulation", "strategies", "chain")
# The layers under the app log under their own package names (``execution.relay``...).
LAYERS = OUR_LOGGERS[1:]


class _ToApp(logging.Handler):
    """Hands a layer's record to the ``mevbot`` logger's handlers: formatted like the app's own
    lines, in the dashboard's log tail, never bare on stderr (Python's last-resort handler)."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger("mevbot").handle(record)


def log_output(no_tui: bool) -> None:
    """Our loggers at the chosen level (INFO by default), the layers' records through the app's
    own logger; with ``--no-tui`` every record as a structured line on stderr in the chosen
    format (with the dashboard, the bot's own log tail shows them instead)."""
    settings = log_settings()
    level = getattr(logging, settings.level.upper())
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(level)
    for name in LAYERS:
        layer = logging.getLogger(name)
        layer.addHandler(_ToApp())
        layer.propagate = False  # they reach stderr through "mevbot", once
    if no_tui:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(FORMATTERS[settings.format]())
        root = logging.getLogger()
        root.setLevel(max(level, logging.WARNING))
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
