"""Evidence of equivocation: CometBFT's DuplicateVoteEvidence, verified, de-duplicated,
gossiped, included by proposers in blocks, committed and counted.

Theory of operation
-------------------
Algorithm 1 is safe with at most f byzantine validators by quorum intersection alone; it
names no penalty (Buchman et al. 2018 §4 leave accountability to the application). CometBFT
makes equivocation accountable: two votes signed by one validator for one (height, round,
type) with different block ids are proof of misbehaviour anyone can check. Here:

* detection: a vote (direct, or inside a proposal's `last_commit`) that contradicts the
  one this validator holds from the same signer at the same position (voting.py);
* verification (`evidence_problem`): same signer, position and type, different block
  ids, both signatures valid for a validator of the set, not older than
  `evidence_age_blocks_max` heights and not from the future;
* de-duplication: one form per piece (vote_a names the smaller block id), identified by
  its digest; pending and committed pieces are remembered (committed ones for as long as
  they could still be proposed: the age limit);
* gossip: a new piece is broadcast once; peers verify it before keeping it;
* inclusion: a proposer appends pending pieces to its block as tagged entries
  (EVIDENCE_TAG + canonical bytes) - at most `evidence_per_block_max` pieces and
  `evidence_bytes_per_block_max` bytes. Blocks carry only opaque entries, so evidence
  travels in `Block.txs`: the ledger refuses the unknown bytes as a transaction (no state
  change) and the block, its hash and its certificate prove the evidence committed;
* validation: a proposal whose evidence is malformed, invalid, repeated or committed
  already is not valid(v), and gets a nil prevote;
* commit: each piece in a committed block is a Note(kind="evidence") - one structured
  line per piece - and is counted (`committed_evidence`). `evidence_in_block` reads them
  back from any stored block (queries, catch-up, the simulator).
"""
from __future__ import annotations

from consensus import canonical
from consensus.api import EngineConfig
from consensus.tendermint.messages import DuplicateVoteEvidence, Vote
from consensus.types import Block, SignedMessage

EVIDENCE_TAG = b"QENEX/tendermint/evidence/v1:"
PENDING_EVIDENCE_MAX = 1_024
COMMITTED_EVIDENCE_REMEMBERED_MAX = 65_536


def make_evidence(first: SignedMessage, second: SignedMessage) -> DuplicateVoteEvidence:
    """The one form of a piece: the vote naming the smaller block id first."""
    a, b = sorted((first, second), key=lambda s: s.message.block_hash)  # type: ignore[attr-defined]
    return DuplicateVoteEvidence(a, b)


def evidence_id(evidence: DuplicateVoteEvidence) -> bytes:
    return canonical.digest(evidence)


def evidence_problem(config: EngineConfig, evidence: object, height: int) -> str | None:
    """Why `evidence` is not valid evidence at `height`, or None."""
    if not isinstance(evidence, DuplicateVoteEvidence):
        return "not evidence"
    a, b = evidence.vote_a, evidence.vote_b
    if not isinstance(a, SignedMessage) or not isinstance(b, SignedMessage) \
            or not isinstance(a.message, Vote) or not isinstance(b.message, Vote):
        return "evidence must hold two signed votes"
    va, vb = a.message, b.message
    if a.sender != b.sender or va.validator != a.sender or vb.validator != b.sender:
        return "votes of different validators"
    if a.sender not in config.validators:
        return "not a validator"
    if (va.height, va.round, va.step) != (vb.height, vb.round, vb.step):
        return "votes at different positions"
    if not va.block_hash < vb.block_hash:
        return "votes name the same block, or are out of order"
    if va.height > height:
        return "evidence from the future"
    if va.height + config.evidence_age_blocks_max < height:
        return "evidence too old"
    if not (config.verifier.verify(a.sender, va, a.signature)
            and config.verifier.verify(b.sender, vb, b.signature)):
        return "bad signature"
    return None


def evidence_entry(evidence: DuplicateVoteEvidence) -> bytes:
    return EVIDENCE_TAG + canonical.encode(evidence)


def decode_entry(entry: bytes) -> DuplicateVoteEvidence | None | str:
    """The evidence in a block entry; None for an ordinary transaction; a string (the
    reason) for a tagged entry that is not evidence."""
    if not entry.startswith(EVIDENCE_TAG):
        return None
    try:
        value = canonical.decode(entry[len(EVIDENCE_TAG):])
    except canonical.CanonicalError as exc:
        return f"undecodable evidence: {exc}"
    return value if isinstance(value, DuplicateVoteEvidence) else "tagged entry is not evidence"


def evidence_in_block(block: Block) -> tuple[DuplicateVoteEvidence, ...]:
    """Every well-formed piece of evidence a (committed) block carries, in block order."""
    found = (decode_entry(tx) for tx in block.txs)
    return tuple(e for e in found if isinstance(e, DuplicateVoteEvidence))


def evidence_fields(evidence: DuplicateVoteEvidence) -> dict[str, object]:
    """One piece as flat fields: what an evidence index, a query answer and a log line
    show (block ids hex, "" for nil)."""
    vote = evidence.vote
    return {"id": evidence_id(evidence).hex(), "validator": evidence.validator,
            "height": vote.height, "round": vote.round, "type": vote.step.name.lower(),
            "block_a": evidence.vote_a.message.block_hash.hex(),  # type: ignore[attr-defined]
            "block_b": evidence.vote_b.message.block_hash.hex()}  # type: ignore[attr-defined]


def describe(evidence: DuplicateVoteEvidence) -> str:
    """The structured log line of one piece (key=value, stable order)."""
    vote = evidence.vote
    return (f"evidence=duplicate_vote validator={evidence.validator} height={vote.height} "
            f"round={vote.round} type={vote.step.name.lower()} "
            f"block_a={evidence.vote_a.message.block_hash.hex()[:16] or 'nil'} "  # type: ignore[attr-defined]
            f"block_b={evidence.vote_b.message.block_hash.hex()[:16] or 'nil'} "  # type: ignore[attr-defined]
            f"id={evidence_id(evidence).hex()[:16]}")
