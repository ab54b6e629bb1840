"""A running devnet: one anvil process with the world deployed, cached for near-instant restarts.

The first start deploys :data:`anvil.world.SPEC` and saves anvil's state (``anvil_dumpState``)
with the world description under ``state_dir``, keyed by a hash of our compiled artifacts,
Uniswap's official ones, the code that builds the world, the spec and the anvil version. The
next start with the same key loads that state instead of deploying again.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from anvil.artifacts import OFFICIAL, official_path
from anvil.build import MANIFEST
from anvil.deployer import Deployer
from anvil.world import SPEC, World, WorldSpec, deploy_world
from chain.node import PROJECT_ROOT, AnvilProcess, find_anvil

DEFAULT_STATE_DIR = PROJECT_ROOT / ".devnet-state"


# The code that builds the world: editing it changes what a deploy produces.
WORLD_CODE = tuple(
    Path(__file__).with_name(name)
    for name in ("world.py", "uniswap_v3.py", "aave.py", "deployer.py", "svr.py")
)


def cache_key(spec: WorldSpec) -> str:
    """Changes with our artifacts, Uniswap's official ones, the world code and spec, and anvil."""
    anvil_version = subprocess.run(
        [find_anvil(), "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[:1]
    digest = hashlib.sha256()
    official = (official_path(name).read_bytes() for name in sorted(OFFICIAL))
    for part in (
        MANIFEST.read_bytes(),
        *official,
        *(path.read_bytes() for path in WORLD_CODE),
        repr(spec).encode(),
        repr(anvil_version).encode(),
    ):
        digest.update(part)
    return digest.hexdigest()[:16]


@dataclass
class Devnet:
    """Start with :meth:`start`, stop with :meth:`stop` (or use as a context manager).

    ``block_time`` > 0 mines a block every that many seconds once the world is deployed;
    0 keeps automine (a block per transaction); ``None`` leaves mining to someone else
    (manual mode: the devnet block builder mines with ``evm_mine``).
    """

    block_time: int | None = 2
    state_dir: Path | None = DEFAULT_STATE_DIR
    anvil_args: tuple[str, ...] = ()
    spec: WorldSpec = SPEC
    node: AnvilProcess = field(init=False)
    world: World = field(init=False)
    loaded_from_cache: bool = field(default=False, init=False)

    def start(self) -> World:
        cache = self.state_dir / cache_key(self.spec) if self.state_dir is not None else None
        cached = cache is not None and (cache / "world.json").exists()
        # The saved state goes in on anvil's command line: it is more than anvil's 2 MB limit
        # on an HTTP request body (anvil_loadState).
        load = ("--load-state", str(cache / "state.json")) if cache and cached else ()
        args = ("--chain-id", "31337", *load, *self.anvil_args)
        self.node = AnvilProcess(args=args).start()
        try:
            if cache is not None and cached:
                self.world = World.from_json(json.loads((cache / "world.json").read_text()))
                self.world.rpc = {"http": self.node.http_url, "ws": self.node.ws_url}
                self.loaded_from_cache = True
            else:
                self.world = deploy_world(self.node.http_url, self.node.ws_url, self.spec)
                if cache is not None:
                    self._save(cache)
            self._set_mining()
        except BaseException:
            self.node.stop()
            raise
        return self.world

    def _save(self, cache: Path) -> None:
        """anvil's state as the JSON ``--load-state`` reads (anvil_dumpState gzips it), then
        the world: a cache with a world.json is complete."""
        cache.mkdir(parents=True, exist_ok=True)
        dump = Deployer(self.node.http_url).rpc("anvil_dumpState")
        (cache / "state.json").write_bytes(gzip.decompress(bytes.fromhex(dump[2:])))
        partial = cache / "world.json.partial"
        partial.write_text(json.dumps(self.world.to_json(), indent=1))
        partial.rename(cache / "world.json")

    def _set_mining(self) -> None:
        deployer = Deployer(self.node.http_url)
        if self.block_time is None:
            deployer.rpc("evm_setAutomine", False)
        elif self.block_time > 0:
            deployer.rpc("evm_setIntervalMining", self.block_time)

    def stop(self) -> None:
        self.node.stop()

    def __enter__(self) -> World:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
