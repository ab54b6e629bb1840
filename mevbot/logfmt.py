"""Safe text: untrusted strings made printable, and one-line ``key=value`` events for ``--no-tui``.

Token symbols, revert reasons, relay error messages and log lines come from strangers. Before
any of them reaches a terminal, :func:`printable` turns every control or invisible format
character (ESC, C1 controls such as the one-byte CSI ``\\x9b``, bidi overrides, line
separators, lone surrogates) into a visible escape, so that what is shown is exactly what was
received and nothing can move the cursor, clear the screen or reorder text. Backslashes are
doubled so an escape shown can never be confused with the same characters received literally.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

_ELLIPSIS = "…"


def _escape_char(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(value: object, limit: int = 200) -> str:
    """``value`` as text that shows literally on any terminal, cut to about ``limit`` chars."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit and text.isprintable() and "\\" not in text:
        return text
    cut = len(text) > limit
    if cut:
        text = text[:limit]
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char.isprintable():
            out.append(char)
        else:
            # str.isprintable is False for every control, format, separator (bar the space),
            # surrogate, private-use and unassigned character: all shown as escapes.
            out.append(_escape_char(char))
    escaped = "".join(out)
    return escaped + _ELLIPSIS if cut else escaped


def _needs_quotes(text: str) -> bool:
    return not text or any(char in ' ="' for char in text)


def format_value(value: object) -> str:
    """One logfmt value: numbers bare, booleans lower-case, bytes as 0x hex, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    text = printable(value, limit=2000)
    if _needs_quotes(text):
        return '"' + text.replace('"', '\\"') + '"'
    return text


def format_event(kind: str, **fields: object) -> str:
    """``kind=<kind> key=value ...`` on one line; values escaped (see :func:`format_value`)."""
    parts = [f"kind={format_value(kind)}"]
    parts.extend(f"{key}={format_value(value)}" for key, value in fields.items())
    return " ".join(parts)


def event(kind: str, **fields: object) -> dict[str, object]:
    """The ``extra`` of a structured log record: ``log.info(msg, extra=event("bundle_sent",
    block=5))`` is shown as ``kind=bundle_sent ... block=5`` (or its JSON object)."""
    return {"event": kind, "fields": fields}


def eth(wei: int) -> str:
    """Wei as an exact decimal amount of ETH: ``0.0125``, ``-0.000000000000000001``, ``0``."""
    whole, fraction = divmod(abs(wei), 10**18)
    text = f"{whole}.{fraction:018d}".rstrip("0").rstrip(".")
    return f"-{text}" if wei < 0 else text


def record_fields(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, object]:
    """``kind`` (the record's event, else ``log``), time, level, logger, message, the event's
    fields, and the exception if any."""
    extra = getattr(record, "fields", None)
    fields: dict[str, object] = {
        "kind": str(getattr(record, "event", "log")),
        "ts": round(record.created, 3),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    if isinstance(extra, Mapping):
        fields.update({str(key): value for key, value in extra.items() if str(key) != "kind"})
    if record.exc_info:
        fields["exc"] = formatter.formatException(record.exc_info)
    return fields


class EventFormatter(logging.Formatter):
    """Formats log records as :func:`format_event` lines (the ``--no-tui`` output).

    ``logger.info("bundle sent", extra={"event": "bundle_sent", "fields": {...}})`` gives
    ``kind=bundle_sent ts=... level=info logger=... msg="bundle sent" target_block=...``.
    """

    def format(self, record: logging.LogRecord) -> str:
        fields = record_fields(record, self)
        kind = fields.pop("kind")
        return format_event(str(kind), **fields)


def _json_value(value: object) -> object:
    """A JSON-safe value: numbers, strings, booleans and null as they are; bytes as 0x hex;
    NaN, infinities and anything else as text."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    return str(value)


class JsonFormatter(logging.Formatter):
    """Formats log records as one JSON object per line, with the fields of
    :class:`EventFormatter` (ASCII only: every control or non-ASCII character is escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = record_fields(record, self)
        return json.dumps({key: _json_value(value) for key, value in fields.items()})


# --log-format choices.
FORMATTERS: Mapping[str, type[logging.Formatter]] = {
    "logfmt": EventFormatter,
    "json": JsonFormatter,
}
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class LogSettings:
    """``--log-level`` and ``--log-format`` as the command line gave them."""

    level: str = "info"
    format: str = "logfmt"


_settings = LogSettings()


def configure_logging(settings: LogSettings) -> None:
    """Set by the command line before any command runs; read by the commands that log."""
    global _settings
    _settings = settings


def log_settings() -> LogSettings:
    return _settings


# Events the dashboard shows in a panel of their own: in the log tail they would crowd out the rest.
PANEL_EVENTS = frozenset({"opportunity"})


class TailHandler(logging.Handler):
    """Keeps the last ``capacity`` log records as one-line strings for the dashboard's log tail.

    A record with an exception keeps only the exception's last line: the tail shows one row
    per record, the full traceback belongs to the log file.
    """

    def __init__(self, capacity: int = 200, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._lines: deque[str] = deque(maxlen=capacity)
        self.errors = 0  # records at ERROR or above, for the bot's error count

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.errors += 1
        if record.levelno < logging.WARNING and getattr(record, "event", None) in PANEL_EVENTS:
            return
        try:
            clock = time.strftime("%H:%M:%S", time.localtime(record.created))
            line = f"{clock} {record.levelname} {record.name}: {record.getMessage()}"
            error = record.exc_info[1] if record.exc_info else None
            if error is not None:
                line += f" ({type(error).__name__}: {error})"
            self._lines.append(line)
        except Exception:
            self.handleError(record)

    def lines(self, last: int | None = None) -> tuple[str, ...]:
        """The newest ``last`` lines (all kept lines when None), oldest first."""
        lines = tuple(self._lines)
        if last is None:
            return lines
        return lines[-last:] if last > 0 else ()
