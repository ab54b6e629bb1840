"""Local anvil processes: find the binary, start on a free loopback port, probe readiness, stop.

Used by the devnet (``anvil/``), the fork simulator and the tests. The binary is looked up in
``$ANVIL_BIN``, then the project's ``node_modules`` (npm ``@foundry-rs/anvil`` ships the real
binary in a per-platform package), then ``PATH``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The first ten accounts of anvil's default mnemonic ("test test ... junk"): public, well-known
# test keys that only ever hold devnet ether. Roles on the devnet are assigned from these.
ANVIL_DEV_KEYS: tuple[str, ...] = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)


class AnvilNotFound(RuntimeError):
    """No anvil binary could be found; the message names the fix."""


class NodeStartError(RuntimeError):
    """anvil did not come up (bad arguments, fork URL unreachable, start-up timeout)."""


def find_anvil() -> str:
    """Path of the anvil binary, or :class:`AnvilNotFound` explaining how to get one."""
    env = os.environ.get("ANVIL_BIN")
    if env:
        if os.access(env, os.X_OK):
            return env
        raise AnvilNotFound(f"ANVIL_BIN={env!r} is not an executable file")
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    system = platform.system().lower()
    candidates = [
        PROJECT_ROOT
        / "node_modules"
        / "@foundry-rs"
        / f"anvil-{system}-{machine}"
        / "bin"
        / "anvil",
        PROJECT_ROOT / "node_modules" / ".bin" / "anvil",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    on_path = shutil.which("anvil")
    if on_path:
        return on_path
    raise AnvilNotFound(
        "anvil not found: run `make setup` (installs the pinned @foundry-rs/anvil from npm into "
        "node_modules), or set ANVIL_BIN to an anvil binary, or put anvil on PATH"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _probe(port: int) -> bool:
    """True when anvil answers a JSON-RPC request on the port."""
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
    request = (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(request)
            return b'"result"' in sock.recv(4096)
    except OSError:
        return False


@dataclass
class AnvilProcess:
    """One anvil child process on a loopback port.

    ``args`` are extra anvil arguments (``--no-mining``, ``--fork-url URL``, ``--order fifo``...).
    Use as a context manager or call :meth:`start` / :meth:`stop`. Output goes to ``log_path``
    (a temp file by default) so a failed start can show what anvil said.
    """

    args: Sequence[str] = ()
    port: int = 0
    startup_timeout: float = 20.0
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def ipc_path(self) -> str | None:
        args = list(self.args)
        if "--ipc" in args:
            index = args.index("--ipc")
            if index + 1 < len(args) and not args[index + 1].startswith("-"):
                return args[index + 1]
        return None

    def start(self) -> AnvilProcess:
        binary = find_anvil()
        if not self.port:
            self.port = free_port()
        if self.log_path is None:
            import tempfile

            fd, name = tempfile.mkstemp(prefix=f"anvil-{self.port}-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        command = [binary, "--host", "127.0.0.1", "--port", str(self.port), *self.args]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NodeStartError(
                    f"anvil exited with code {self.process.returncode} at start-up: "
                    f"{self.tail_log()}"
                )
            if _probe(self.port):
                return self
            time.sleep(0.02)
        self.stop()
        raise NodeStartError(
            f"anvil did not answer on port {self.port} within {self.startup_timeout:.0f} s: "
            f"{self.tail_log()}"
        )

    async def astart(self) -> AnvilProcess:
        """:meth:`start` without blocking the event loop."""
        return await asyncio.to_thread(self.start)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail_log(self, lines: int = 8) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no output)"
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(no output)"

    def kill(self) -> None:
        """SIGKILL, as a crash would (for tests of supervision)."""
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=5)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def __enter__(self) -> AnvilProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
