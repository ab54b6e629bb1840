"""A guard between pyrevm and the upstream: every state fetch is answered within a time limit.

pyrevm fetches fork state synchronously, holding the GIL, through an HTTP client with no
timeout: an upstream that stops answering would freeze the whole bot (watcher, terminal UI,
metrics) until TCP gives up, which can take many minutes. So pyrevm forks from this guard
instead: a child process on a loopback port that forwards each POST to the upstream on one
kept-alive session and, when the upstream has not answered within ``timeout`` seconds (or
refuses the connection), answers a JSON-RPC error itself. The simulation then fails in bounded
time, with a reason that starts with :data:`GUARD_ERROR`, and the bot goes on.

Run: ``python -m simulation.fetch_guard UPSTREAM_URL TIMEOUT_S``. It prints ``port N`` once it
listens and serves until its stdin closes, so it never outlives the process that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any, Self

import aiohttp
import orjson
from aiohttp import web

GUARD_ERROR = "fetch guard:"
_JSON = {"Content-Type": "application/json"}


def _error_answer(body: bytes, reason: str) -> bytes:
    """A JSON-RPC error for each request in ``body`` (one call or a batch)."""
    try:
        request: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        request = {}
    error = {"code": -32000, "message": f"{GUARD_ERROR} {reason}"}

    def one(call: Any) -> dict[str, Any]:
        ident = call.get("id") if isinstance(call, dict) else None
        return {"jsonrpc": "2.0", "id": ident, "error": error}

    return orjson.dumps([one(c) for c in request] if isinstance(request, list) else one(request))


async def serve(upstream: str, timeout: float) -> None:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8))

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            async with (
                asyncio.timeout(timeout),
                session.post(upstream, data=body, headers=_JSON) as answer,
            ):
                data = await answer.read()
                return web.Response(body=data, status=answer.status, headers=_JSON)
        except TimeoutError:
            reason = f"upstream did not answer within {timeout:g} s"
        except aiohttp.ClientError as error:
            reason = f"upstream unreachable ({type(error).__name__})"
        return web.Response(body=_error_answer(body, reason), headers=_JSON)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"port {port}", flush=True)
    try:
        await asyncio.to_thread(sys.stdin.buffer.read)  # returns when the parent goes away
    finally:
        await runner.cleanup()
        await session.close()


class FetchGuard:
    """The guard process, started and stopped by its simulator: ``url`` is what pyrevm forks."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"

    @classmethod
    async def start(cls, upstream: str, timeout: float, startup_timeout: float = 20.0) -> Self:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "simulation.fetch_guard",
            upstream,
            str(timeout),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        try:
            async with asyncio.timeout(startup_timeout):
                line = (await process.stdout.readline()).decode()
        except TimeoutError:
            line = ""
        if not line.startswith("port "):
            await cls(process, 0).stop()
            raise RuntimeError(f"the fetch guard did not start (exit {process.returncode})")
        return cls(process, int(line.split()[1]))

    def alive(self) -> bool:
        return self.process.returncode is None

    async def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            try:
                async with asyncio.timeout(5):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m simulation.fetch_guard UPSTREAM_URL TIMEOUT_S", file=sys.stderr)
        return 2
    asyncio.run(serve(argv[0], float(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
