"""Compile the devnet's Solidity (anvil/contracts) with the pinned solcjs into chain/artifacts.

``python -m anvil.build`` (or ``make contracts``) writes one JSON per contract (abi, bytecode,
deployedBytecode) and ``_build.json`` recording the hash of every source, the compiler version
and the settings. :func:`stale_reason` compares that record with the tree, so a test can fail
when someone edits a contract and forgets to rebuild.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / "anvil" / "contracts"
ARTIFACTS = ROOT / "chain" / "artifacts"
MANIFEST = ARTIFACTS / "_build.json"
SETTINGS = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}

# solcjs is a node module; it is driven through standard JSON on stdin.
_NODE_DRIVER = """
const solc = require('solc');
let input = '';
process.stdin.on('data', (c) => (input += c));
process.stdin.on('end', () => {
  const output = JSON.parse(solc.compile(input));
  process.stdout.write(JSON.stringify({version: solc.version(), output}));
});
"""


class BuildError(RuntimeError):
    """The compiler failed or reported errors; the message carries its diagnostics."""


def source_files() -> list[Path]:
    return sorted(CONTRACTS.rglob("*.sol"))


def sources_digest() -> dict[str, str]:
    """sha256 of every source, keyed by its path relative to anvil/contracts."""
    return {
        str(path.relative_to(CONTRACTS)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in source_files()
    }


def solc_version() -> str:
    package = ROOT / "node_modules" / "solc" / "package.json"
    if not package.exists():
        raise BuildError("solcjs not installed: run `make setup` (npm ci installs the pinned solc)")
    return json.loads(package.read_text())["version"]


def compile_sources() -> tuple[str, dict]:
    """Run solcjs over every source; return (compiler version, standard-JSON output)."""
    standard_input = {
        "language": "Solidity",
        "sources": {
            str(path.relative_to(CONTRACTS)): {"content": path.read_text()}
            for path in source_files()
        },
        "settings": SETTINGS,
    }
    solc_version()  # clear error when node_modules is missing
    completed = subprocess.run(
        ["node", "-e", _NODE_DRIVER],
        input=json.dumps(standard_input).encode(),
        capture_output=True,
        cwd=ROOT,
        check=False,
    )
    if completed.returncode != 0:
        raise BuildError(f"solcjs failed: {completed.stderr.decode(errors='replace')[-2000:]}")
    result = json.loads(completed.stdout)
    output = result["output"]
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise BuildError("\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors))
    return result["version"], output


def build() -> list[str]:
    """Compile and write artifacts; return the contract names written."""
    version, output = compile_sources()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.json"):
        old.unlink()
    written: list[str] = []
    for source_name, contracts in sorted(output.get("contracts", {}).items()):
        for name, compiled in sorted(contracts.items()):
            bytecode = compiled["evm"]["bytecode"]["object"]
            if not bytecode:  # interfaces and abstract contracts
                continue
            if name in written:
                raise BuildError(f"two contracts are named {name}; artifact names must be unique")
            artifact = {
                "contractName": name,
                "sourceName": source_name,
                "abi": compiled["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
            }
            (ARTIFACTS / f"{name}.json").write_text(json.dumps(artifact, indent=1) + "\n")
            written.append(name)
    manifest = {
        "compiler": f"solcjs {version}",
        "settings": SETTINGS,
        "sources": sources_digest(),
        "contracts": sorted(written),
    }
    MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return written


def stale_reason() -> str | None:
    """Why the committed artifacts do not match the sources, or None when they do."""
    if not MANIFEST.exists():
        return "chain/artifacts/_build.json is missing: run `make contracts`"
    manifest = json.loads(MANIFEST.read_text())
    if manifest.get("settings") != SETTINGS:
        return "compiler settings changed since the last build: run `make contracts`"
    recorded, current = manifest.get("sources", {}), sources_digest()
    changed = sorted(
        name for name in recorded.keys() | current.keys() if recorded.get(name) != current.get(name)
    )
    if changed:
        return f"sources changed since the last build ({', '.join(changed)}): run `make contracts`"
    for name in manifest.get("contracts", []):
        if not (ARTIFACTS / f"{name}.json").exists():
            return f"artifact {name}.json is missing: run `make contracts`"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m anvil.build",
        description="Compile anvil/contracts/*.sol with the pinned solcjs into chain/artifacts/.",
    )
    parser.add_argument(
        "--check", action="store_true", help="only report whether the artifacts are stale"
    )
    args = parser.parse_args(argv)
    if args.check:
        reason = stale_reason()
        print(reason or "artifacts are up to date")
        return 1 if reason else 0
    try:
        names = build()
    except BuildError as error:
        print(f"build failed:\n{error}", file=sys.stderr)
        return 1
    print(f"compiled {len(names)} contracts into {ARTIFACTS.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
