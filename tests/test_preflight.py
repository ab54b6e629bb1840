"""`mevbot run` checks before it starts, against a real devnet: the node's chain, the executor's
code and owner, distinct keys, relays that answer; a node that is down or silent and Ctrl-C
during start-up. Each problem is one line on stderr and the exit code says what kind it is:
2 for the configuration (or keys), 1 for something down. Never a traceback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from test_run_for_real import _doctor_rows

from anvil.deployer import Deployer
from anvil.devnet import Devnet
from anvil.world import World
from chain.node import free_port
from mevbot import cli, cmd_demo

CLI = [sys.executable, "-m", "mevbot.cli"]
CHECKING = "mevbot run: checking the node, the executor, the keys and "


@dataclass(frozen=True, slots=True)
class Net:
    world: World
    world_json: Path

    @property
    def ws(self) -> str:
        return self.world.rpc["ws"]

    @property
    def http(self) -> str:
        return self.world.rpc["http"]

    def key(self, role: str) -> str:
        return self.world.roles[role].private_key


@pytest.fixture(scope="module")
def net(devnet_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    devnet = Devnet(block_time=None, state_dir=devnet_cache)
    world = devnet.start()
    path = tmp_path_factory.mktemp("preflight") / "devnet.json"
    path.write_text(json.dumps(world.to_json()))
    try:
        yield Net(world, path)
    finally:
        devnet.stop()


def _environ(**keys: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEVBOT_")}
    return env | {"PYTHONUNBUFFERED": "1"} | keys


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mevbot.toml"
    path.write_text(
        f'{text}\n[store]\nledger_path = "{tmp_path / "ledger.sqlite"}"\n'
        "[metrics]\nenabled = false\n"
    )
    return path


def _run(config: Path, env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    """Exit code and the lines after the checking line (the failures)."""
    done = subprocess.run(
        [*CLI, "run", "--config", str(config), "--no-tui", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    lines = done.stderr.splitlines()
    assert "Traceback" not in done.stderr, done.stderr
    assert lines and lines[0].startswith(CHECKING), done.stderr
    return done.returncode, lines[1:]


def _devnet(net: Net, extra: str = "") -> str:
    return f'network = "devnet"\ndevnet_json = "{net.world_json}"\n{extra}'


def _sepolia(ws: str, http: str, executor: str, timeout_s: float = 10.0) -> str:
    # The local node stands for sepolia; Flashbots' MEV-Share node cannot be reached from here.
    return (
        f'network = "sepolia"\nexecutor = "{executor}"\ndry_run = true\n'
        'mev_share_url = ""\nmev_share_bundle_url = ""\n'
        f'[node]\nws = "{ws}"\nhttp = "{http}"\ntimeout_s = {timeout_s}\n'
    )


def test_a_config_for_another_chain_is_refused(net, tmp_path):
    config = _config(tmp_path, _sepolia(net.ws, net.http, net.world.executor))
    env = _environ(MEVBOT_EXECUTOR_KEY=net.key("executor"), MEVBOT_SEARCHER_KEY=net.key("searcher"))
    code, lines = _run(config, env)
    assert code == 2
    wrong = "is chain 31337 (devnet), but the config is for sepolia (chain 11155111)"
    assert lines == [
        f"mevbot run: node: {net.ws} {wrong}; point node.ws at a sepolia node, or set network "
        "to the node's chain",
        f"mevbot run: fork node: {net.http} {wrong}; point node.http at a sepolia node, or set "
        "network to the node's chain",
    ]


def test_an_executor_address_without_code_is_refused(net, tmp_path):
    nothing = "0x000000000000000000000000000000000000dead"
    config = _config(tmp_path, _devnet(net, f'executor = "{nothing}"\n'))
    code, lines = _run(config, _environ())
    assert code == 2
    assert lines == [
        f"mevbot run: executor: no contract at {nothing} on chain 31337 (devnet); deploy one: "
        "mevbot executor deploy --config FILE --write-config"
    ]


def test_an_executor_key_that_is_not_the_owner_is_refused(net, tmp_path):
    trader = net.world.traders[0]
    env = _environ(MEVBOT_EXECUTOR_KEY=trader.private_key, MEVBOT_SEARCHER_KEY=net.key("searcher"))
    code, lines = _run(_config(tmp_path, _devnet(net)), env)
    assert code == 2
    owner = net.world.roles["executor"].address
    assert lines == [
        f"mevbot run: executor owner: {net.world.executor} obeys {owner}, but the executor key "
        f"is {trader.address}; give the executor owner's key (keys.executor_env or "
        "keys.executor_keystore)"
    ]


def test_the_same_key_for_executor_and_searcher_is_refused(net, tmp_path):
    key = net.key("executor")
    code, lines = _run(
        _config(tmp_path, _devnet(net)),
        _environ(MEVBOT_EXECUTOR_KEY=key, MEVBOT_SEARCHER_KEY=key),
    )
    assert code == 2
    assert lines == [
        "mevbot run: keys: the executor key and the searcher key are the same key "
        f"({net.world.roles['executor'].address}); give MEVBOT_SEARCHER_KEY a key of its own "
        "(it signs relay requests only)"
    ]


def test_a_relay_refusing_connections_is_a_runtime_failure(net, tmp_path):
    port = free_port()
    relay = f'[[relays]]\nname = "closed"\nurl = "http://127.0.0.1:{port}/bundles"\n'
    code, lines = _run(_config(tmp_path, _devnet(net, relay)), _environ())
    assert code == 1
    assert lines == [
        f"mevbot run: relay closed: http://127.0.0.1:{port}: connection refused; check the "
        "relay URL, or set dry_run = true to submit nothing"
    ]


def test_a_redis_that_is_down_is_a_runtime_failure(net, tmp_path):
    down = f"redis://127.0.0.1:{free_port()}/0"
    code, lines = _run(
        _config(tmp_path, _devnet(net)), _environ(), "--role", "worker", "--redis", down
    )
    assert code == 1
    assert lines == [
        f"mevbot run: redis: {down.removesuffix('/0')}: connection refused; start redis-server, "
        "or correct --redis (or store.redis_url)"
    ]


def test_a_node_that_is_down_is_one_line_per_endpoint(net, tmp_path):
    ws, http = f"ws://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    env = _environ(MEVBOT_EXECUTOR_KEY=net.key("executor"), MEVBOT_SEARCHER_KEY=net.key("searcher"))
    code, lines = _run(_config(tmp_path, _sepolia(ws, http, net.world.executor)), env)
    assert code == 1
    assert lines == [
        f"mevbot run: node: {ws}: connection refused; start the node or correct node.ws",
        f"mevbot run: fork node: {http}: connection refused; start the node or correct node.http",
    ]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never says a word."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def test_a_silent_node_is_a_runtime_failure(net, tmp_path, silent_port):
    ws, http = f"ws://127.0.0.1:{silent_port}", f"http://127.0.0.1:{silent_port}"
    env = _environ(MEVBOT_EXECUTOR_KEY=net.key("executor"), MEVBOT_SEARCHER_KEY=net.key("searcher"))
    config = _config(tmp_path, _sepolia(ws, http, net.world.executor, timeout_s=1))
    code, lines = _run(config, env)
    assert code == 1
    assert lines == [
        f"mevbot run: node: {ws}: no answer within 1 s; start the node or correct node.ws",
        f"mevbot run: fork node: {http}: no answer within 1 s; start the node or correct node.http",
    ]


def test_ctrl_c_during_start_up_is_one_line(net, tmp_path, silent_port):
    ws, http = f"ws://127.0.0.1:{silent_port}", f"http://127.0.0.1:{silent_port}"
    env = _environ(MEVBOT_EXECUTOR_KEY=net.key("executor"), MEVBOT_SEARCHER_KEY=net.key("searcher"))
    config = _config(tmp_path, _sepolia(ws, http, net.world.executor, timeout_s=600))
    bot = subprocess.Popen(
        [*CLI, "run", "--config", str(config), "--no-tui"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert bot.stderr is not None
        assert bot.stderr.readline().startswith(CHECKING)
        bot.send_signal(signal.SIGINT)
        rest = bot.stderr.read()
        assert bot.wait(timeout=30) == 1
    finally:
        if bot.poll() is None:
            bot.kill()
    assert rest == "mevbot run: interrupted during start-up\n"


def test_ctrl_c_before_a_command_handles_signals_is_one_line(monkeypatch, capsys):
    def starting(args):
        raise KeyboardInterrupt  # as Ctrl-C does while the command still imports

    monkeypatch.setattr(cmd_demo, "cmd_demo", starting)
    assert cli.main(["demo", "--no-tui"]) == 1
    assert capsys.readouterr().err == "mevbot: interrupted\n"


def test_an_aave_pool_of_an_unknown_revision_is_refused_in_one_line(net, tmp_path):
    """A pool answering POOL_REVISION 3 (code that returns 3 to any call): the bot refuses it
    rather than sizing liquidations by another revision's rules."""
    pool = "0x000000000000000000000000000000000000a3a3"
    Deployer(net.http).rpc("anvil_setCode", pool, "0x600360005260206000f3")
    config = _config(tmp_path, _devnet(net, f'lending_pool = "{pool}"\n'))
    code, lines = _run(config, _environ())
    assert code == 2
    assert lines == [
        f"mevbot run: positions: the lending market {pool} does not load: Aave pool revision 3"
        " is not supported (known: 1): its liquidation and rounding rules differ; refusing"
        " rather than mis-sizing; correct lending_pool, or remove it to run without liquidations"
    ]


@pytest.fixture
def no_debug_http(net) -> Iterator[str]:
    """The devnet's HTTP endpoint without the debug namespace, as many providers serve it: a
    ``debug_*`` call gets geth's answer to an unknown method, the rest is forwarded."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def answer(request: web.Request) -> web.Response:
        body = await request.json()
        method = body.get("method", "") if isinstance(body, dict) else ""
        if method.startswith("debug_"):
            error = {
                "code": -32601,
                "message": f"the method {method} does not exist/is not available",
            }
            return web.json_response({"jsonrpc": "2.0", "id": body.get("id"), "error": error})
        async with aiohttp.ClientSession() as session, session.post(net.http, json=body) as reply:
            return web.json_response(await reply.json())

    async def serve() -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def test_revm_on_a_node_without_diff_traces_is_refused_and_anvil_told_what_it_costs(
    net, tmp_path, no_debug_http
):
    node = f'[node]\nws = "{net.ws}"\nhttp = "{no_debug_http}"\n'
    revm = '[simulation]\nbackend = "revm"\n'
    missing = (
        f"{no_debug_http} does not serve debug_traceBlockByNumber (the method "
        "debug_traceBlockByNumber does not exist/is not available)"
    )
    code, lines = _run(_config(tmp_path, _devnet(net, node + revm)), _environ())
    assert code == 2
    assert lines == [
        f"mevbot run: diff traces: {missing}: revm would fork a cold cache at every head; use a "
        'node that serves it (geth, reth, anvil), or set simulation.backend = "anvil"'
    ]
    anvil = _config(tmp_path, _devnet(net, node + '[simulation]\nbackend = "anvil"\n'))
    doctor = subprocess.run(
        [*CLI, "doctor", "--config", str(anvil)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_environ(),
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert _doctor_rows(doctor.stdout)["diff traces"].lstrip().startswith("✔"), doctor.stdout
    said = " ".join(doctor.stdout.split())  # the table wraps the long row
    assert f"{missing}: the anvil fork is reset at every head" in said, doctor.stdout
