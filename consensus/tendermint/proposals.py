"""getValue() and valid(v) of Algorithm 1 (Buchman et al. 2018 §3: "valid(v) checks the
value against the application"), with transactions handed on to the next proposer.

Theory of operation
-------------------
getValue (`new_block`): the proposer extends its committed block with the transactions
queued for it (oldest first, none committed already, within `batch_txs_max` and
`batch_bytes_max`) and the pending evidence (evidence.py, its own bounds). The header
names the state the proposer has applied, like PBFT's and HotStuff's. Its timestamp is
the latest the proposer knows (driver time of its last batch, or the parent's); it is not
a validity condition: a validator that caught up holds no parent header, and CometBFT's
BFT time (median of precommit times) is left for later work.

valid (`block_problem`): the right height, parent, chain and tx root, within the limits,
a proposer from the set, the state root we hold at
the state height the header names, and evidence that is all valid, new and within bounds.
An invalid value gets a nil prevote (lines 26, 32) - it is not refused as a message.

Batches. The driver offers transactions (`Propose`) to every validator at block
intervals. A validator keeps them when it proposes soon (`Replica.takes_batches`), else
refuses them with NOT_LEADER and the driver forwards them to `Replica.next_proposer`'s
mempool - a coming height's proposer, skipping suspects of a crash -, whose
admission refuses transactions committed already - also those of blocks fetched by
catch-up, which this engine never sees. (An engine-to-engine batch, as HotStuff has,
would bypass that check: a replayed batch could make an honest proposer that caught up
order a committed transaction again.) Queued transactions stay until a block with them
commits, also when forwarded (our next turn is the fallback for a lost forward); the
driver's mempool re-offers anything still lost after its proposal timeout.
"""
from __future__ import annotations

from consensus.api import EffectsBuilder, Propose, RejectReason
from consensus.tendermint.evidence import (
    decode_entry,
    evidence_entry,
    evidence_id,
    evidence_problem,
)
from consensus.tendermint.state import QUEUED_TXS_MAX, Replica
from consensus.types import Block, make_block


# ------------------------------------------------------------------ batches
def on_propose(r: Replica, fx: EffectsBuilder, event: Propose) -> None:
    """Keep the batch for our own proposals; unless we propose soon, also refuse it with
    NOT_LEADER so the driver forwards it to `status().leader` through the mempools. The
    copy kept here is the fallback when the forward is lost (or its proposer crashed):
    it goes into our next proposal unless a block with it commits first."""
    if len(event.txs) > r.config.batch_txs_max or \
            sum(len(tx) for tx in event.txs) > r.config.batch_bytes_max:
        fx.reject(RejectReason.OVER_LIMIT, None, "batch over limit")
        return
    r.last_timestamp_ms = max(r.last_timestamp_ms, event.timestamp_ms)
    r.work_seen = True
    fresh = [tx for tx in event.txs if tx and tx not in r.committed_txs]
    if len(r.queued_txs) + len(fresh) <= QUEUED_TXS_MAX:
        for tx in fresh:
            r.queued_txs[tx] = None
    elif r.takes_batches():
        fx.reject(RejectReason.OVER_LIMIT, None, "proposal queue full")
        return
    if not r.takes_batches():
        fx.reject(RejectReason.NOT_LEADER, None, f"validator {r.next_proposer()} proposes "
                  "next")


def forget_committed_txs(r: Replica, block: Block) -> None:
    for tx in block.txs:
        r.queued_txs.pop(tx, None)
        r.committed_txs[tx] = None
    while len(r.committed_txs) > 2 * QUEUED_TXS_MAX:
        del r.committed_txs[next(iter(r.committed_txs))]


# ------------------------------------------------------------------ getValue()
def next_txs(r: Replica) -> list[bytes]:
    txs: list[bytes] = []
    size = 0
    for tx in r.queued_txs:
        if len(txs) >= r.config.batch_txs_max or size + len(tx) > r.config.batch_bytes_max:
            break
        txs.append(tx)
        size += len(tx)
    return txs


def next_evidence(r: Replica) -> list[bytes]:
    entries: list[bytes] = []
    size = 0
    for evidence in r.pending_evidence.values():
        entry = evidence_entry(evidence)  # type: ignore[arg-type]
        if len(entries) >= r.config.evidence_per_block_max or \
                size + len(entry) > r.config.evidence_bytes_per_block_max:
            break
        if evidence_problem(r.config, evidence, r.height) is None:
            entries.append(entry)
            size += len(entry)
    return entries


def new_block(r: Replica) -> Block:
    txs = tuple(next_txs(r) + next_evidence(r))
    timestamp = max(r.last_timestamp_ms, r.committed_timestamp_ms)
    return make_block(r.config.chain_id, r.height, r.committed_hash, txs, r.me, timestamp,
                      r.applied_height, r.applied_root)


# ------------------------------------------------------------------ valid(v)
def block_problem(r: Replica, block: Block) -> str | None:
    header = block.header
    if header.height != r.height or header.parent_hash != r.committed_hash:
        return "block does not extend our committed block"
    if header.chain_id != r.config.chain_id or not block.tx_root_matches():
        return "wrong chain id or tx root"
    if header.proposer not in r.config.validators:
        return "proposer not a validator"
    if header.state_height >= header.height or (
            header.state_height == r.applied_height and header.state_root != r.applied_root):
        return "state root differs from ours"
    txs = [tx for tx in block.txs if decode_entry(tx) is None]
    if len(txs) > r.config.batch_txs_max or sum(map(len, txs)) > r.config.batch_bytes_max:
        return "batch over limit"
    return evidence_list_problem(r, [tx for tx in block.txs if decode_entry(tx) is not None])


def evidence_list_problem(r: Replica, entries: list[bytes]) -> str | None:
    if len(entries) > r.config.evidence_per_block_max or \
            sum(map(len, entries)) > r.config.evidence_bytes_per_block_max:
        return "evidence over limit"
    seen: set[bytes] = set()
    for entry in entries:
        evidence = decode_entry(entry)
        if isinstance(evidence, str):
            return evidence
        problem = evidence_problem(r.config, evidence, r.height)
        if problem is not None:
            return f"invalid evidence: {problem}"
        ident = evidence_id(evidence)  # type: ignore[arg-type]
        if ident in seen or ident in r.committed_evidence:
            return "evidence repeated or committed already"
        seen.add(ident)
    return None
