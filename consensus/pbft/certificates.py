"""Checking what other replicas claim: certificates, proofs and proposed blocks.

Theory of operation
-------------------
PBFT replicas never take a peer's word for a protocol fact; they take 2f + 1 signatures
(Castro & Liskov 1999 §4.4, TOCS 2002 §4.4-4.5). The driver verified the envelope of each
message, but the messages *inside* a VIEW-CHANGE, a NEW-VIEW or a commit certificate
were signed by other replicas and are checked here through `config.verifier`:

* a prepared certificate is a PRE-PREPARE signed by the primary of its view plus 2f
  PREPAREs from distinct backups with the same (v, n, d) (§4.2 "prepared");
* a checkpoint proof is 2f + 1 CHECKPOINTs from distinct replicas with the same
  (n, state root, block hash) (§4.3 "stable");
* a commit certificate is 2f + 1 COMMITs from distinct replicas with the same (v, n, d)
  (§4.2 "committed-local"); catch-up checks blocks with it (TOCS §5.3.2);
* a VIEW-CHANGE is well formed when all of the above hold for what it carries (§4.4).
Each check returns the checked value or None; callers turn None into a `Rejected`.
"""
from __future__ import annotations

from consensus.api import EngineConfig
from consensus.pbft.messages import (
    Checkpoint,
    Commit,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ViewChange,
    primary_of,
)
from consensus.types import (
    EMPTY_ROOT,
    GENESIS_HASH,
    Block,
    Certificate,
    SignedMessage,
    bft_quorum,
)

COMMIT_CERTIFICATE_KIND = "pbft.commit"


def quorum_of(config: EngineConfig) -> int:
    """2f + 1 for this config: `consensus.types.bft_quorum` is the one formula; the
    replica's own predicates (state.py) and these checks both come through here."""
    return bft_quorum(config.validators.size, config.fault_tolerance)


def signed_ok(config: EngineConfig, signed: SignedMessage, kind: type) -> bool:
    """The signature is the claimed sender's over this exact message, and the message
    names that sender where it names a replica at all."""
    message = signed.message
    if not isinstance(message, kind) or signed.sender not in config.validators:
        return False
    replica = getattr(message, "replica", signed.sender)
    if replica != signed.sender:
        return False
    return config.verifier.verify(signed.sender, message, signed.signature)


def block_problem(config: EngineConfig, view: int, sequence: int, digest: bytes,
                  block: Block, fresh: bool = True) -> str | None:
    """Why `block` cannot be the batch of PRE-PREPARE(view, sequence, digest), or None.

    A `fresh` block is proposed in this view, so its proposer is the view's primary; a
    block re-proposed by a NEW-VIEW keeps the proposer of the view it was first in."""
    header = block.header
    if block.block_hash != digest:
        return "digest is not the block hash"
    if header.height != sequence:
        return f"block height {header.height} is not sequence {sequence}"
    if header.chain_id != config.chain_id:
        return "wrong chain id"
    if fresh and header.proposer != primary_of(view, config.validators.size):
        return "block proposer is not the primary of the view"
    if not block.tx_root_matches():
        return "tx root does not match the transactions"
    if len(block.txs) > config.batch_txs_max or block.payload_bytes() > config.batch_bytes_max:
        return "batch over limit"
    return None


def check_prepared_certificate(config: EngineConfig,
                               cert: PreparedCertificate) -> PrePrepare | None:
    """Pre-prepare from the view's primary + 2f matching prepares from other replicas."""
    signed_pp = cert.pre_prepare
    if not isinstance(signed_pp, SignedMessage) or not isinstance(signed_pp.message, PrePrepare):
        return None
    pp = signed_pp.message
    primary = primary_of(pp.view, config.validators.size)
    if signed_pp.sender != primary or not signed_ok(config, signed_pp, PrePrepare):
        return None
    if block_problem(config, pp.view, pp.sequence, pp.digest, pp.block, fresh=False):
        return None
    voters: set[int] = set()
    for signed in cert.prepares:
        vote = signed.message
        if not isinstance(vote, Prepare) or signed.sender == primary or signed.sender in voters:
            return None
        if (vote.view, vote.sequence, vote.digest) != (pp.view, pp.sequence, pp.digest):
            return None
        if not signed_ok(config, signed, Prepare):
            return None
        voters.add(signed.sender)
    return pp if len(voters) >= quorum_of(config) - 1 else None


def check_checkpoint_proof(config: EngineConfig, sequence: int,
                           proof: tuple[SignedMessage, ...]) -> tuple[bytes, bytes] | None:
    """(block hash, state root) that 2f + 1 replicas vouch for at `sequence`."""
    if sequence == 0:
        return (GENESIS_HASH, EMPTY_ROOT) if not proof else None
    if not proof or not isinstance(proof[0].message, Checkpoint):
        return None
    first = proof[0].message
    senders: set[int] = set()
    for signed in proof:
        point = signed.message
        if not isinstance(point, Checkpoint) or signed.sender in senders:
            return None
        if (point.sequence, point.state_root, point.block_hash) != \
                (sequence, first.state_root, first.block_hash):
            return None
        if not signed_ok(config, signed, Checkpoint):
            return None
        senders.add(signed.sender)
    if len(senders) < quorum_of(config):
        return None
    return first.block_hash, first.state_root


def check_view_change(config: EngineConfig, signed: SignedMessage,
                      view: int | None = None) -> ViewChange | None:
    """A VIEW-CHANGE whose signature, checkpoint proof and prepared certificates hold."""
    if not signed_ok(config, signed, ViewChange):
        return None
    change: ViewChange = signed.message  # type: ignore[assignment]
    if view is not None and change.new_view != view:
        return None
    if check_checkpoint_proof(config, change.stable_sequence, change.checkpoint_proof) is None:
        return None
    high = change.stable_sequence + config.log_window_blocks
    seen: set[int] = set()
    for cert in change.prepared:
        pp = check_prepared_certificate(config, cert)
        if pp is None or pp.view >= change.new_view or pp.sequence in seen:
            return None
        if not change.stable_sequence < pp.sequence <= high:
            return None
        seen.add(pp.sequence)
    return change


def check_commit_certificate(config: EngineConfig, block: Block,
                             certificate: Certificate) -> bool:
    """2f + 1 distinct valid COMMITs for (v, block height, block hash), one view."""
    if certificate.height != block.height or certificate.block_hash != block.block_hash:
        return False
    return check_commit_votes(config, certificate)


def check_commit_votes(config: EngineConfig, certificate: Certificate) -> bool:
    """The votes of a commit certificate prove its (height, block hash) final; the read
    barrier checks them without the block (read_barrier.py)."""
    if certificate.kind != COMMIT_CERTIFICATE_KIND:
        return False
    views: set[int] = set()
    senders: set[int] = set()
    for signed in certificate.votes:
        vote = signed.message
        if not isinstance(vote, Commit) or signed.sender in senders:
            return False
        if vote.sequence != certificate.height or vote.digest != certificate.block_hash:
            return False
        if not signed_ok(config, signed, Commit):
            return False
        views.add(vote.view)
        senders.add(signed.sender)
    return len(views) == 1 and len(senders) >= quorum_of(config)
