"""The bot's HTTP endpoint: ``GET /status`` (BotStatus as JSON) and ``GET /metrics`` (Prometheus).

Server side, :class:`StatusServer` is an aiohttp app on a loopback port (port 0 picks a free
one). ``/status`` answers ``BotStatus.to_json()``; ``/metrics`` first brings the counters up to
the current snapshot, then answers the Prometheus text format. Both only call the cheap snapshot
callable, never the network. Client side, :func:`fetch_status` and :func:`status_from_json`
are what ``mevbot status`` uses; the JSON is validated back into a :class:`BotStatus`, and any
answer that does not fit raises :class:`StatusFetchError` with a message saying why.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import TypeAdapter, ValidationError

from mevbot.status import BotStatus

if TYPE_CHECKING:
    from mevbot.metrics import Metrics

log = logging.getLogger("mevbot.endpoint")

STATUS_PATH = "/status"
METRICS_PATH = "/metrics"
_STATUS_ADAPTER: TypeAdapter[BotStatus] = TypeAdapter(BotStatus)


class StatusFetchError(Exception):
    """``mevbot status`` could not get a usable status (unreachable, bad answer, bad JSON)."""


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class StatusServer:
    """Serves ``/status`` and ``/metrics`` until :meth:`stop`."""

    def __init__(self, metrics: Metrics, snapshot: Callable[[], BotStatus] | None = None) -> None:
        self.metrics = metrics
        self.snapshot = snapshot
        self.host: str | None = None
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(STATUS_PATH, self._status)
        app.router.add_get(METRICS_PATH, self._metrics)
        return app

    async def _status(self, request: web.Request) -> web.Response:
        if self.snapshot is None:
            return _error(404, "this endpoint serves no status")
        try:
            status = self.snapshot()
        except Exception as error:
            return _error(503, f"status snapshot failed: {type(error).__name__}: {error}")
        # json, not orjson: wei amounts exceed 64 bits.
        return web.Response(text=json.dumps(status.to_json()), content_type="application/json")

    async def _metrics(self, request: web.Request) -> web.Response:
        if self.snapshot is not None:
            try:
                self.metrics.update_from(self.snapshot())
            except Exception as error:
                # Serve what we have: a scrape that fails entirely hides the other metrics too.
                log.warning("metrics: status snapshot failed: %s: %s", type(error).__name__, error)
        return web.Response(
            body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Binds and serves; returns the port (the one picked when ``port`` is 0)."""
        if self._runner is not None:
            raise RuntimeError("the status server is already running")
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self.host, self.port = str(bound_host), int(bound_port)
        return self.port

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the status server is not running")
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        """Stops listening and closes open connections."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self.port = None


def status_url(url: str) -> str:
    """The ``/status`` URL of a bot given its base URL (or the status URL itself)."""
    base = url.rstrip("/")
    return base if base.endswith(STATUS_PATH) else base + STATUS_PATH


async def fetch_status(url: str, timeout: float = 5.0) -> dict[str, Any]:
    """The JSON a running bot serves at ``url`` (its base URL or ``.../status``)."""
    target = status_url(url)
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(target) as response,
        ):
            body = await response.read()
            if response.status != 200:
                detail = body[:300].decode("utf-8", "replace")
                raise StatusFetchError(f"{target} answered HTTP {response.status}: {detail}")
    except (TimeoutError, aiohttp.ClientError) as error:
        reason = str(error) or type(error).__name__
        raise StatusFetchError(f"cannot reach {target}: {reason}") from error
    try:
        data = json.loads(body)
    except ValueError as error:
        raise StatusFetchError(f"{target} did not answer JSON: {error}") from error
    if not isinstance(data, dict):
        raise StatusFetchError(f"{target} answered {type(data).__name__}, not a JSON object")
    return data


def status_from_json(data: Mapping[str, Any]) -> BotStatus:
    """Validates ``BotStatus.to_json()`` output back into a :class:`BotStatus`."""
    try:
        return _STATUS_ADAPTER.validate_python(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors()[:5]
        )
        raise StatusFetchError(f"not a bot status: {problems}") from error
