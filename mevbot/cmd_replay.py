"""``mevbot replay``: run a recorded journal through the strategies on a fork, print candidates.

Output is a table (one row per candidate, then a summary) or, with ``--jsonl``, one JSON object
per candidate on stdout (:meth:`~mevbot.replay.ReplayCandidate.to_json`) and the summary on
stderr. The same journal prints the same candidates on every run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # the engine and simulators load only when the command runs
    from mevbot.replay import ReplayReport


def summary_lines(report: ReplayReport) -> list[str]:
    events = ", ".join(f"{kind} {count}" for kind, count in sorted(report.events.items()))
    lines = [
        f"replayed {sum(report.events.values())} events ({events}) "
        f"from block {report.start_block} to {report.last_block}",
        f"{len(report.candidates)} candidates"
        + "".join(
            f"\n  {strategy:<12} {verdict:<10} {count}"
            for (strategy, verdict), count in report.by_strategy_and_verdict().items()
        ),
    ]
    if report.off_chain_heads:
        lines.append(
            f"{report.off_chain_heads} heads are no longer on the upstream's chain (reorged): "
            f"the fork simulated on the canonical block of the same number"
        )
    return lines


def print_table(report: ReplayReport, out: IO[str]) -> None:

    header = ("LINE", "STRATEGY", "TARGET", "VERDICT", "EXPECTED WEI", "KEY")
    rows = [
        (
            str(c.line),
            c.strategy,
            str(c.target_block),
            c.verdict,
            str(c.expected_profit_wei),
            c.key,
        )
        for c in report.candidates
    ]
    # The key (last column) is as long as it needs: only the columns before it are padded.
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row, candidate in zip([header, *rows], [None, *report.candidates], strict=True):
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*padded, row[-1]]), file=out)
        if candidate is not None:
            detail = candidate.action.describe()
            if candidate.reason:
                detail += f"  [{candidate.reason}]"
            print(f"    {detail}", file=out)
    print(file=out)
    for line in summary_lines(report):
        print(line, file=out)


def cmd_replay(args: argparse.Namespace) -> int:
    from mevbot.config import ConfigError, load_config
    from mevbot.replay import ReplayError, replay_journal
    from mevbot.resolve import resolve_deployment, resolve_keys
    from watcher.journal import JournalError

    try:
        config = load_config(args.config, network=args.network)
        overrides: dict[str, Any] = {"dry_run": True}
        if args.devnet_json is not None:
            overrides["devnet_json"] = args.devnet_json
        config = config.model_copy(update=overrides)
        deployment = resolve_deployment(config)
        keys = resolve_keys(config)
    except ConfigError as error:
        print(f"mevbot replay: {error}", file=sys.stderr)
        return 2
    upstream = args.rpc or deployment.node_http
    try:
        report = asyncio.run(
            replay_journal(
                args.journal,
                upstream_url=upstream,
                deployment=deployment,
                config=config,
                signer=keys.executor,
            )
        )
    except (JournalError, ReplayError) as error:
        print(f"mevbot replay: {args.journal}: {error}", file=sys.stderr)
        return 1
    if report.truncated_line is not None:
        print(
            f"mevbot replay: {args.journal}: line {report.truncated_line} is cut short (the "
            "recorder stopped while writing it): replayed every line before it",
            file=sys.stderr,
        )
    if args.jsonl:
        for candidate in report.candidates:
            print(json.dumps(candidate.to_json(), separators=(",", ":")))
        for line in summary_lines(report):
            print(line, file=sys.stderr)
    else:
        print_table(report, sys.stdout)
    return 0


def register(commands: Any) -> None:
    replay = commands.add_parser(
        "replay",
        help="run a recorded journal through the strategies on a fork and list the candidates",
        description=(
            "Replay a journal recorded by `mevbot watch --record FILE` or the bot: the local "
            "state is loaded as of the block before the journal's first head, the fork "
            "simulator starts there, and the recorded events run in order through the same "
            "strategies and engine as live, in dry run (nothing is sent). Heads apply their "
            "recorded logs and move the fork to that block; pending txs are decoded, backrun "
            "candidates are built, priced and simulated as the exact signed bundle. Prints "
            "every candidate (strategy, key, target block, action, expected profit, verdict: "
            "simulated, or dropped with the reason) and a summary. The same journal gives the "
            "same candidates on every run. The upstream must still serve the journal's blocks "
            "(an archive node, or the devnet that was recorded)."
        ),
    )
    replay.add_argument("--journal", required=True, metavar="FILE", help="the journal to replay")
    replay.add_argument(
        "--rpc",
        metavar="URL",
        help="upstream node to fork from, with the journal's blocks (default: the config's "
        "node.http; for the devnet, the devnet's HTTP URL)",
    )
    replay.add_argument(
        "--config", type=Path, metavar="FILE", help="config file (TOML), as for the bot"
    )
    replay.add_argument(
        "--network",
        choices=("devnet", "sepolia", "hoodi", "mainnet"),
        help="network preset (default: the config's)",
    )
    replay.add_argument(
        "--devnet-json",
        type=Path,
        metavar="FILE",
        help="the devnet description (`mevbot devnet --out FILE`) when --network devnet",
    )
    replay.add_argument(
        "--jsonl",
        action="store_true",
        help="one JSON object per candidate on stdout (integers as decimal strings), summary "
        "on stderr",
    )
    replay.set_defaults(handler=cmd_replay)
