"""Checking QCs, TCs and commit certificates; building commit certificates.

Theory of operation
-------------------
Replicas take no peer's word for a protocol fact, only 2f + 1 signatures (Jolteon §2,
DiemBFT v4 §4 'valid_signatures'). The driver verified each message's envelope; votes
inside a QC and timeouts inside a TC were signed by others and are checked here through
`config.verifier`:

* a QC is 2f + 1 votes from distinct validators, each naming its signer and carrying
  exactly the QC's vote data; the genesis QC is the one QC with no votes;
* a TC is 2f + 1 timeouts of its round from distinct validators.

Commit certificate (`Certificate(kind="hotstuff.qc")`). Block B is final when its child C,
proposed in the round after B's, is certified (2-chain rule). A vote for C names C's
parent B and B's round (messages.py), so the QC on C alone - 2f + 1 signatures over
votes that name B's hash - proves B final to anyone holding only the validator set: f + 1
honest replicas checked QC(B) before voting for C. Blocks below B that become final with
it (their child was not in the next round) carry a chain of QCs: QC(child of X) names X,
QC(grandchild) names the child, ..., ending with the consecutive QC that finalised B.
`votes` is those QCs' votes, concatenated from X upwards; every signature covers X's hash
directly or through the chain of parent hashes. In the common case the chain is one QC.
"""
from __future__ import annotations

from consensus.api import EngineConfig
from consensus.hotstuff.messages import (
    GENESIS_QC,
    QuorumCertificate,
    Timeout,
    TimeoutCertificate,
    Vote,
)
from consensus.types import Block, Certificate, SignedMessage, max_faulty_bft

COMMIT_CERTIFICATE_KIND = "hotstuff.qc"
CERTIFICATE_QCS_MAX = 64  # QCs chained in one commit certificate: bounds the checking work


def quorum_of(config: EngineConfig) -> int:
    nodes = config.validators.size
    faults = config.fault_tolerance if config.fault_tolerance is not None else \
        max_faulty_bft(nodes)
    return nodes - faults


def check_qc(config: EngineConfig, qc: QuorumCertificate) -> str | None:
    """Why `qc` is not a valid quorum certificate, or None."""
    if not isinstance(qc, QuorumCertificate):
        return "not a QC"
    if qc == GENESIS_QC:
        return None
    if qc.round <= qc.parent_round or qc.height < 1:
        return "QC round not above its parent's, or no height"
    senders: set[int] = set()
    for signed in qc.votes:
        if not isinstance(signed, SignedMessage) or signed.sender in senders \
                or signed.sender not in config.validators:
            return "QC vote from an unknown or repeated signer"
        if signed.message != qc.vote_of(signed.sender):
            return "QC vote does not match the QC"
        if not config.verifier.verify(signed.sender, signed.message, signed.signature):
            return "QC vote with a bad signature"
        senders.add(signed.sender)
    return None if len(senders) >= quorum_of(config) else "QC without 2f + 1 votes"


def check_tc(config: EngineConfig, tc: TimeoutCertificate) -> str | None:
    """Why `tc` is not a valid timeout certificate, or None."""
    if not isinstance(tc, TimeoutCertificate) or tc.round < 1:
        return "not a TC"
    senders: set[int] = set()
    for signed in tc.timeouts:
        if not isinstance(signed, SignedMessage) or signed.sender in senders \
                or signed.sender not in config.validators:
            return "TC timeout from an unknown or repeated signer"
        timeout = signed.message
        if not isinstance(timeout, Timeout) or timeout.round != tc.round \
                or timeout.voter != signed.sender or timeout.high_qc_round >= tc.round:
            return "TC timeout does not match the TC"
        if not config.verifier.verify(signed.sender, timeout, signed.signature):
            return "TC timeout with a bad signature"
        senders.add(signed.sender)
    return None if len(senders) >= quorum_of(config) else "TC without 2f + 1 timeouts"


def commit_certificate(block: Block, chain_qcs: list[QuorumCertificate]) -> Certificate:
    """`chain_qcs[0]` certifies `block`'s child, each next one the previous one's block,
    the last one commits its parent."""
    votes = tuple(signed for qc in chain_qcs for signed in qc.votes)
    return Certificate(COMMIT_CERTIFICATE_KIND, block.height, block.block_hash, votes)


def split_into_qcs(certificate: Certificate) -> list[tuple[Vote, set[int]]] | None:
    """Runs of votes with the same vote data, in order: (vote data, signers) each."""
    runs: list[tuple[Vote, set[int]]] = []
    for signed in certificate.votes:
        vote = signed.message if isinstance(signed, SignedMessage) else None
        if not isinstance(vote, Vote):
            return None
        data = Vote(vote.round, vote.height, vote.block_hash, vote.parent_round,
                    vote.parent_hash, 0)
        if not runs or runs[-1][0] != data:
            if len(runs) >= CERTIFICATE_QCS_MAX:
                return None
            runs.append((data, set()))
        runs[-1][1].add(signed.sender)
    return runs


def check_commit_certificate(config: EngineConfig, block: Block,
                             certificate: Certificate) -> bool:
    if certificate.kind != COMMIT_CERTIFICATE_KIND or certificate.height != block.height \
            or certificate.block_hash != block.block_hash:
        return False
    runs = split_into_qcs(certificate)
    if not runs:
        return False
    below = (block.height, block.block_hash)
    for data, signers in runs:
        if (data.height - 1, data.parent_hash) != below or data.round <= data.parent_round:
            return False
        if len(signers) < quorum_of(config):
            return False
        below = (data.height, data.block_hash)
    if runs[-1][0].round != runs[-1][0].parent_round + 1:
        return False
    return all(isinstance(s.message, Vote) and s.message.voter == s.sender
               and s.sender in config.validators
               and config.verifier.verify(s.sender, s.message, s.signature)
               for s in certificate.votes)
