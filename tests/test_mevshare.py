"""The MEV-Share SSE client against a local server speaking the documented format.

The server sends ``:ping`` comments, ``data:`` events shaped like the documentation's samples
(``logs: null``, optional tx fields, optional ``mevGasPrice``/``gasUsed``), a malformed event, an
``id:`` and a ``retry:`` field, then closes; the client must reconnect (sending Last-Event-ID)
and go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from chain.types import MalformedError
from watcher.events import MevShareHint
from watcher.mevshare import MevShareSource, parse_hint
from watcher.resilience import Backoff

# From the Flashbots docs' sample (event-stream.mdx), with the hash written out in full.
DOCUMENTED = {
    "hash": "0xc7dc" + "00" * 30,
    "logs": None,
    "txs": [
        {
            "to": "0x0000c335bc9d5d1af0402cad63fa7f258363d71a",
            "functionSelector": "0x696d2073",
            "callData": "0x696d20736861726969696969696e67",
        }
    ],
}
WITH_LOGS = {
    "hash": "0x90b4f5" + "11" * 29,
    "logs": [
        {
            "address": "0x" + "44" * 20,
            "topics": ["0x1c411e9a96e071241c2f21f7726b17ae89e3cab4c78be50e062b03a9fffbbad1"],
            "data": "0x" + "00" * 64,
        }
    ],
    "txs": None,
    "mevGasPrice": "0x3b9aca00",
    "gasUsed": "0x5208",
}
SECOND = {"hash": "0x" + "22" * 32, "txs": [{"hash": "0x" + "33" * 32}]}


@contextlib.asynccontextmanager
async def sse_server() -> AsyncIterator[tuple[str, list[str | None]]]:
    last_event_ids: list[str | None] = []
    done = asyncio.Event()

    async def stream(request: web.Request) -> web.StreamResponse:
        last_event_ids.append(request.headers.get("Last-Event-ID"))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if len(last_event_ids) == 1:
            await response.write(b":ping\n\n")
            await response.write(b"data: " + json.dumps(DOCUMENTED).encode() + b"\n\n")
            await response.write(b"data: {this is not json\n\n")
            await response.write(b"data: " + json.dumps({"hash": "0x12"}).encode() + b"\n\n")
            # One event split over two data lines and two TCP writes, with CRLF line ends.
            body = json.dumps(WITH_LOGS)
            middle = body.index(', "txs"')  # between tokens: the joining newline is whitespace
            await response.write(f"id: 7\r\nretry: 50\r\ndata: {body[:middle]}\r\n".encode())
            await response.write(f"data: {body[middle:]}\r\n\r\n".encode())
            return response  # closes the stream
        await response.write(b"data: " + json.dumps(SECOND).encode() + b"\n\n")
        await done.wait()  # keep the stream open until the test ends
        return response

    app = web.Application()
    app.router.add_get("/", stream)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/", last_event_ids
    finally:
        done.set()
        await runner.cleanup()


async def test_sse_client_parses_documented_events_and_reconnects() -> None:
    async with sse_server() as (url, last_event_ids):
        source = MevShareSource(url, backoff=Backoff(base=0.01, cap=0.05))
        hints: list[MevShareHint] = []
        three = asyncio.Event()

        async def collect(event: object) -> None:
            assert isinstance(event, MevShareHint)
            hints.append(event)
            if len(hints) == 3:
                three.set()

        task = asyncio.create_task(source.run(collect))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await three.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    assert [hint.hash for hint in hints] == [DOCUMENTED["hash"], WITH_LOGS["hash"], SECOND["hash"]]
    documented, with_logs, second = hints
    assert documented.logs is None
    (tx,) = documented.txs
    assert tx.to == "0x0000c335bc9d5d1af0402cad63fa7f258363d71a"
    assert tx.function_selector == bytes.fromhex("696d2073")
    assert tx.call_data == b"im shariiiiiing"
    assert tx.hash is None
    assert documented.mev_gas_price is None and documented.gas_used is None
    assert with_logs.txs == ()
    assert with_logs.logs is not None and with_logs.logs[0].address == "0x" + "44" * 20
    assert with_logs.mev_gas_price == 10**9 and with_logs.gas_used == 21000
    assert second.txs[0].hash == "0x" + "33" * 32
    assert source.pings == 1
    assert source.stats.reconnects == 1
    assert source.retry_seconds == 0.05
    assert last_event_ids == [None, "7"]
    assert source.stats.malformed.counts == {
        "event data is not JSON": 1,
        "event hash: not a 32-byte hash: '0x12'": 1,
    }
    assert source.stats.by_path["stream"] == 3


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
def test_parse_hint_raises_only_malformed_error(obj: object) -> None:
    for candidate in (
        obj,
        {"hash": "0x" + "ab" * 32, "txs": obj},
        {"hash": "0x" + "ab" * 32, "logs": obj, "txs": []},
    ):
        with contextlib.suppress(MalformedError):
            parse_hint(candidate, source="s", received_at=0)
