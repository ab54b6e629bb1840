"""Bundle building: the backrun txs as they were signed, then our signed executor call.

Pure: no I/O. One signed executor tx serves every target block, so the plan holds one tx and
one :class:`~chain.types.Bundle` per target block (they share a bundle hash). A backrun tx
without its signed envelope cannot be bundled; an envelope that does not hash to the tx's hash
is refused too (it would be another tx).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_hash.auto import keccak

from chain.types import Bundle, PendingTx, SignedTx
from execution.bids import Bid
from execution.executor_calls import ExecutorCall, sign_executor_call
from execution.signer import LocalSigner
from simulation.candidates import Candidate


class BundleBuildError(ValueError):
    """The candidate cannot be turned into a bundle; the message says which tx and why."""


@dataclass(frozen=True, slots=True)
class BundlePlan:
    """Our signed tx and the bundles carrying it, one per target block (ascending)."""

    candidate_key: str
    our_tx: SignedTx
    bundles: tuple[Bundle, ...]
    bid: Bid

    @property
    def bundle_hash(self) -> str:
        return self.bundles[0].bundle_hash

    @property
    def first_block(self) -> int:
        return self.bundles[0].block_number

    @property
    def last_block(self) -> int:
        return self.bundles[-1].block_number


def backrun_signed(tx: PendingTx) -> SignedTx:
    """The signed envelope of a tx we backrun, checked against its hash."""
    if tx.raw is None:
        raise BundleBuildError(f"backrun tx {tx.hash} has no signed envelope (raw)")
    if "0x" + keccak(tx.raw).hex() != tx.hash:
        raise BundleBuildError(f"backrun tx {tx.hash}: its raw envelope hashes to another tx")
    return SignedTx(raw=tx.raw, hash=tx.hash, sender=tx.sender, nonce=tx.nonce)


def build_bundles(
    candidate: Candidate,
    call: ExecutorCall,
    bid: Bid,
    signer: LocalSigner,
    nonce: int,
    chain_id: int,
    *,
    last_block: int | None = None,
    replacement_uuid: str | None = None,
) -> BundlePlan:
    """Sign ``call`` with ``nonce`` and bundle it behind the candidate's backrun txs for blocks
    ``candidate.target_block..last_block`` (default: the target block only)."""
    first_block = candidate.target_block
    last = first_block if last_block is None else last_block
    if last < first_block:
        raise BundleBuildError(f"last block {last} precedes the target block {first_block}")
    backrun = tuple(backrun_signed(tx) for tx in candidate.backrun)
    ours = sign_executor_call(signer, call, bid, nonce, chain_id)
    txs = (*backrun, ours)
    bundles = tuple(
        Bundle(txs=txs, block_number=block, replacement_uuid=replacement_uuid)
        for block in range(first_block, last + 1)
    )
    return BundlePlan(candidate_key=candidate.key, our_tx=ours, bundles=bundles, bid=bid)
