"""Domain values <-> `qenex.v1` protobuf messages for the client API (server and SDK).

Protobuf stays at this edge: the backend answers with domain dataclasses, the service
turns them into messages here, and the SDK turns headers back into domain headers so it
can recompute block hashes itself (hashes are over canonical bytes, never protobuf).

Certificate votes: a vote's inner consensus message is engine-specific and its protobuf
form belongs to the transport codec; `certificate_to_pb` takes an optional `vote_encoder`
for it and otherwise sends each vote's sender and signature only.
"""
from __future__ import annotations

from collections.abc import Callable

from consensus.types import BlockHeader, Certificate, SignedMessage
from ledger.errors import Reason
from proto.qenex.v1 import block_pb2, consensus_pb2, node_pb2, transaction_pb2
from qenex_node.api.backend import (
    EvidencePageView,
    EvidenceView,
    NodeEvent,
    NodeStatusView,
    StateProofView,
    SubmitResult,
    TransactionRecord,
)
from qenex_node.core.app import TxOutcome
from qenex_node.core.sync import CommittedBlock

VoteEncoder = Callable[[SignedMessage], consensus_pb2.SignedConsensusMessage]
LEADER_UNKNOWN = -1
# A non-membership proof that ends at another account carries that account's key and value
# hash as one extra trailing 64 B entry in `StateProof.siblings` (tree siblings are 32 B).
OTHER_LEAF_ENTRY_BYTES = 64


def header_to_pb(header: BlockHeader) -> block_pb2.BlockHeader:
    return block_pb2.BlockHeader(
        chain_id=header.chain_id, height=header.height, parent_hash=header.parent_hash,
        tx_root=header.tx_root, state_height=header.state_height, state_root=header.state_root,
        proposer=header.proposer, timestamp_ms=header.timestamp_ms)


def header_from_pb(msg: block_pb2.BlockHeader) -> BlockHeader:
    return BlockHeader(chain_id=msg.chain_id, height=msg.height, parent_hash=msg.parent_hash,
                       tx_root=msg.tx_root, state_height=msg.state_height,
                       state_root=msg.state_root, proposer=msg.proposer,
                       timestamp_ms=msg.timestamp_ms)


def _vote_without_message(vote: SignedMessage) -> consensus_pb2.SignedConsensusMessage:
    return consensus_pb2.SignedConsensusMessage(sender=vote.sender, signature=vote.signature)


def certificate_to_pb(cert: Certificate,
                      vote_encoder: VoteEncoder | None = None) -> consensus_pb2.Certificate:
    encode = vote_encoder or _vote_without_message
    return consensus_pb2.Certificate(kind=cert.kind, height=cert.height,
                                     block_hash=cert.block_hash,
                                     votes=[encode(v) for v in cert.votes])


def committed_block_to_pb(item: CommittedBlock,
                          vote_encoder: VoteEncoder | None = None) -> consensus_pb2.CommittedBlock:
    block = block_pb2.Block(header=header_to_pb(item.block.header), txs=list(item.block.txs))
    return consensus_pb2.CommittedBlock(block=block, block_hash=item.block.block_hash,
                                        certificate=certificate_to_pb(item.certificate,
                                                                      vote_encoder),
                                        state_root=item.state_root)


def reason_code(reason: str) -> int:
    """The ledger's numeric code for a reason name (0 for names the ledger does not own)."""
    member = Reason.__members__.get(reason)
    return int(member) if member is not None else 0


def receipt_to_pb(outcome: TxOutcome, height: int) -> transaction_pb2.Receipt:
    return transaction_pb2.Receipt(tx_id=outcome.tx_id, height=height, index=outcome.index,
                                   success=outcome.success, reason=reason_code(outcome.reason),
                                   reason_text=outcome.reason)


def submit_result_to_pb(result: SubmitResult) -> node_pb2.SubmitTransactionResponse:
    msg = node_pb2.SubmitTransactionResponse(
        tx_id=result.tx_id, status=node_pb2.SubmitStatus.Value(result.status),
        height=result.height, reason=result.reason, detail=result.detail)
    if result.outcome is not None:
        msg.receipt.CopyFrom(receipt_to_pb(result.outcome, result.height))
    return msg


def transaction_record_to_pb(record: TransactionRecord, prove: bool,
                             vote_encoder: VoteEncoder | None = None
                             ) -> node_pb2.GetTransactionResponse:
    msg = node_pb2.GetTransactionResponse(
        tx=transaction_pb2.SignedTransaction.FromString(record.tx),
        receipt=receipt_to_pb(record.outcome, record.height),
        header=header_to_pb(record.header),
        certificate=certificate_to_pb(record.certificate, vote_encoder))
    if prove:
        msg.proof.CopyFrom(node_pb2.MerkleProof(leaf_index=record.proof_index,
                                                leaf_count=record.proof_count,
                                                path=list(record.proof_path)))
    return msg


def account_to_pb(account: object) -> node_pb2.Account:
    # `account` is a ledger.account.Account; typed loosely so the seam stays ledger-agnostic.
    return node_pb2.Account(
        address=account.address, scheme=account.scheme,  # type: ignore[attr-defined]
        public_key=account.public_key, nonce=account.nonce,  # type: ignore[attr-defined]
        balances=[node_pb2.Balance(currency=c, amount=a)
                  for c, a in account.balances])  # type: ignore[attr-defined]


def state_proof_to_pb(view: StateProofView,
                      vote_encoder: VoteEncoder | None = None) -> node_pb2.StateProof:
    proof = view.proof
    siblings = list(proof.siblings)  # type: ignore[attr-defined]
    if proof.other_key:  # type: ignore[attr-defined]
        siblings.append(proof.other_key + proof.other_value_hash)  # type: ignore[attr-defined]
    msg = node_pb2.StateProof(height=view.height, state_root=view.state_root, leaf=view.leaf,
                              siblings=siblings, scheme=view.scheme)
    if view.header is not None:
        msg.header.CopyFrom(header_to_pb(view.header))
    if view.certificate is not None:
        msg.certificate.CopyFrom(certificate_to_pb(view.certificate, vote_encoder))
    return msg


def status_to_pb(view: NodeStatusView) -> node_pb2.NodeStatus:
    return node_pb2.NodeStatus(
        node_id=view.node_id, chain_id=view.chain_id, algorithm=view.algorithm,
        height=view.height, state_root=view.state_root, block_hash=view.block_hash,
        view=view.view, leader=LEADER_UNKNOWN if view.leader is None else view.leader,
        role=view.role, peers_connected=view.peers_connected, mempool_txs=view.mempool_txs,
        version=view.version)


def evidence_to_pb(view: EvidenceView) -> node_pb2.Evidence:
    return node_pb2.Evidence(
        height=view.height, index=view.index, validator=view.validator,
        evidence_height=view.evidence_height, round=view.round,
        vote_type=consensus_pb2.TendermintVoteStep.Value(view.vote_type),
        block_a=view.block_a, block_b=view.block_b, signature_a=view.signature_a,
        signature_b=view.signature_b, evidence=view.evidence)


def evidence_page_to_pb(page: EvidencePageView) -> node_pb2.GetEvidenceResponse:
    return node_pb2.GetEvidenceResponse(items=[evidence_to_pb(v) for v in page.items],
                                        next_height=page.next_height)


def event_to_pb(event: NodeEvent) -> node_pb2.Event:
    if event.kind == "block_committed":
        return node_pb2.Event(block_committed=node_pb2.BlockCommitted(
            height=event.height, block_hash=event.block_hash, state_root=event.state_root,
            tx_count=event.tx_count, timestamp_ms=event.timestamp_ms))
    if event.kind == "transaction_committed":
        receipt = receipt_to_pb(event.outcome, event.height) if event.outcome else None
        return node_pb2.Event(transaction_committed=node_pb2.TransactionCommitted(
            tx_id=event.tx_id, height=event.height, receipt=receipt))
    if event.kind == "leader_changed":
        leader = LEADER_UNKNOWN if event.leader is None else event.leader
        return node_pb2.Event(leader_changed=node_pb2.LeaderChanged(view=event.view,
                                                                    leader=leader))
    raise ValueError(f"unknown event kind {event.kind!r}")  # a backend bug, not client input
