from proto.qenex.v1 import block_pb2 as _block_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TendermintVoteStep(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TENDERMINT_VOTE_STEP_UNSPECIFIED: _ClassVar[TendermintVoteStep]
    PREVOTE: _ClassVar[TendermintVoteStep]
    PRECOMMIT: _ClassVar[TendermintVoteStep]
TENDERMINT_VOTE_STEP_UNSPECIFIED: TendermintVoteStep
PREVOTE: TendermintVoteStep
PRECOMMIT: TendermintVoteStep

class ConsensusEnvelope(_message.Message):
    __slots__ = ("protocol_version", "chain_id", "sender", "signature", "message")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    chain_id: str
    sender: int
    signature: bytes
    message: ConsensusMessage
    def __init__(self, protocol_version: _Optional[int] = ..., chain_id: _Optional[str] = ..., sender: _Optional[int] = ..., signature: _Optional[bytes] = ..., message: _Optional[_Union[ConsensusMessage, _Mapping]] = ...) -> None: ...

class ConsensusMessage(_message.Message):
    __slots__ = ("pbft", "raft", "hotstuff", "tendermint", "sync", "transactions")
    PBFT_FIELD_NUMBER: _ClassVar[int]
    RAFT_FIELD_NUMBER: _ClassVar[int]
    HOTSTUFF_FIELD_NUMBER: _ClassVar[int]
    TENDERMINT_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    pbft: PbftMessage
    raft: RaftMessage
    hotstuff: HotStuffMessage
    tendermint: TendermintMessage
    sync: SyncMessage
    transactions: TransactionBatch
    def __init__(self, pbft: _Optional[_Union[PbftMessage, _Mapping]] = ..., raft: _Optional[_Union[RaftMessage, _Mapping]] = ..., hotstuff: _Optional[_Union[HotStuffMessage, _Mapping]] = ..., tendermint: _Optional[_Union[TendermintMessage, _Mapping]] = ..., sync: _Optional[_Union[SyncMessage, _Mapping]] = ..., transactions: _Optional[_Union[TransactionBatch, _Mapping]] = ...) -> None: ...

class SignedConsensusMessage(_message.Message):
    __slots__ = ("sender", "signature", "message")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    sender: int
    signature: bytes
    message: ConsensusMessage
    def __init__(self, sender: _Optional[int] = ..., signature: _Optional[bytes] = ..., message: _Optional[_Union[ConsensusMessage, _Mapping]] = ...) -> None: ...

class Certificate(_message.Message):
    __slots__ = ("kind", "height", "block_hash", "votes")
    KIND_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    kind: str
    height: int
    block_hash: bytes
    votes: _containers.RepeatedCompositeFieldContainer[SignedConsensusMessage]
    def __init__(self, kind: _Optional[str] = ..., height: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., votes: _Optional[_Iterable[_Union[SignedConsensusMessage, _Mapping]]] = ...) -> None: ...

class CommittedBlock(_message.Message):
    __slots__ = ("block", "block_hash", "certificate", "state_root")
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    block: _block_pb2.Block
    block_hash: bytes
    certificate: Certificate
    state_root: bytes
    def __init__(self, block: _Optional[_Union[_block_pb2.Block, _Mapping]] = ..., block_hash: _Optional[bytes] = ..., certificate: _Optional[_Union[Certificate, _Mapping]] = ..., state_root: _Optional[bytes] = ...) -> None: ...

class PbftMessage(_message.Message):
    __slots__ = ("pre_prepare", "prepare", "commit", "checkpoint", "view_change", "new_view", "status", "read_query", "read_answer")
    PRE_PREPARE_FIELD_NUMBER: _ClassVar[int]
    PREPARE_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    VIEW_CHANGE_FIELD_NUMBER: _ClassVar[int]
    NEW_VIEW_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    READ_QUERY_FIELD_NUMBER: _ClassVar[int]
    READ_ANSWER_FIELD_NUMBER: _ClassVar[int]
    pre_prepare: PbftPrePrepare
    prepare: PbftPrepare
    commit: PbftCommit
    checkpoint: PbftCheckpoint
    view_change: PbftViewChange
    new_view: PbftNewView
    status: PbftStatus
    read_query: PbftReadQuery
    read_answer: PbftReadAnswer
    def __init__(self, pre_prepare: _Optional[_Union[PbftPrePrepare, _Mapping]] = ..., prepare: _Optional[_Union[PbftPrepare, _Mapping]] = ..., commit: _Optional[_Union[PbftCommit, _Mapping]] = ..., checkpoint: _Optional[_Union[PbftCheckpoint, _Mapping]] = ..., view_change: _Optional[_Union[PbftViewChange, _Mapping]] = ..., new_view: _Optional[_Union[PbftNewView, _Mapping]] = ..., status: _Optional[_Union[PbftStatus, _Mapping]] = ..., read_query: _Optional[_Union[PbftReadQuery, _Mapping]] = ..., read_answer: _Optional[_Union[PbftReadAnswer, _Mapping]] = ...) -> None: ...

class PbftPrePrepare(_message.Message):
    __slots__ = ("view", "sequence", "digest", "block")
    VIEW_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    view: int
    sequence: int
    digest: bytes
    block: _block_pb2.Block
    def __init__(self, view: _Optional[int] = ..., sequence: _Optional[int] = ..., digest: _Optional[bytes] = ..., block: _Optional[_Union[_block_pb2.Block, _Mapping]] = ...) -> None: ...

class PbftPrepare(_message.Message):
    __slots__ = ("view", "sequence", "digest", "replica")
    VIEW_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    view: int
    sequence: int
    digest: bytes
    replica: int
    def __init__(self, view: _Optional[int] = ..., sequence: _Optional[int] = ..., digest: _Optional[bytes] = ..., replica: _Optional[int] = ...) -> None: ...

class PbftCommit(_message.Message):
    __slots__ = ("view", "sequence", "digest", "replica")
    VIEW_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    view: int
    sequence: int
    digest: bytes
    replica: int
    def __init__(self, view: _Optional[int] = ..., sequence: _Optional[int] = ..., digest: _Optional[bytes] = ..., replica: _Optional[int] = ...) -> None: ...

class PbftCheckpoint(_message.Message):
    __slots__ = ("sequence", "state_root", "block_hash", "replica")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    state_root: bytes
    block_hash: bytes
    replica: int
    def __init__(self, sequence: _Optional[int] = ..., state_root: _Optional[bytes] = ..., block_hash: _Optional[bytes] = ..., replica: _Optional[int] = ...) -> None: ...

class PbftPreparedCertificate(_message.Message):
    __slots__ = ("pre_prepare", "prepares")
    PRE_PREPARE_FIELD_NUMBER: _ClassVar[int]
    PREPARES_FIELD_NUMBER: _ClassVar[int]
    pre_prepare: SignedConsensusMessage
    prepares: _containers.RepeatedCompositeFieldContainer[SignedConsensusMessage]
    def __init__(self, pre_prepare: _Optional[_Union[SignedConsensusMessage, _Mapping]] = ..., prepares: _Optional[_Iterable[_Union[SignedConsensusMessage, _Mapping]]] = ...) -> None: ...

class PbftViewChange(_message.Message):
    __slots__ = ("new_view", "stable_sequence", "checkpoint_proof", "prepared", "replica")
    NEW_VIEW_FIELD_NUMBER: _ClassVar[int]
    STABLE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_PROOF_FIELD_NUMBER: _ClassVar[int]
    PREPARED_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    new_view: int
    stable_sequence: int
    checkpoint_proof: _containers.RepeatedCompositeFieldContainer[SignedConsensusMessage]
    prepared: _containers.RepeatedCompositeFieldContainer[PbftPreparedCertificate]
    replica: int
    def __init__(self, new_view: _Optional[int] = ..., stable_sequence: _Optional[int] = ..., checkpoint_proof: _Optional[_Iterable[_Union[SignedConsensusMessage, _Mapping]]] = ..., prepared: _Optional[_Iterable[_Union[PbftPreparedCertificate, _Mapping]]] = ..., replica: _Optional[int] = ...) -> None: ...

class PbftNewView(_message.Message):
    __slots__ = ("view", "view_changes", "pre_prepares")
    VIEW_FIELD_NUMBER: _ClassVar[int]
    VIEW_CHANGES_FIELD_NUMBER: _ClassVar[int]
    PRE_PREPARES_FIELD_NUMBER: _ClassVar[int]
    view: int
    view_changes: _containers.RepeatedCompositeFieldContainer[SignedConsensusMessage]
    pre_prepares: _containers.RepeatedCompositeFieldContainer[SignedConsensusMessage]
    def __init__(self, view: _Optional[int] = ..., view_changes: _Optional[_Iterable[_Union[SignedConsensusMessage, _Mapping]]] = ..., pre_prepares: _Optional[_Iterable[_Union[SignedConsensusMessage, _Mapping]]] = ...) -> None: ...

class PbftSlotStatus(_message.Message):
    __slots__ = ("sequence", "pre_prepare", "prepares", "commits")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PRE_PREPARE_FIELD_NUMBER: _ClassVar[int]
    PREPARES_FIELD_NUMBER: _ClassVar[int]
    COMMITS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    pre_prepare: bool
    prepares: _containers.RepeatedScalarFieldContainer[int]
    commits: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, sequence: _Optional[int] = ..., pre_prepare: _Optional[bool] = ..., prepares: _Optional[_Iterable[int]] = ..., commits: _Optional[_Iterable[int]] = ...) -> None: ...

class PbftStatus(_message.Message):
    __slots__ = ("view", "view_changing", "committed_height", "low_water_mark", "slots", "replica")
    VIEW_FIELD_NUMBER: _ClassVar[int]
    VIEW_CHANGING_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    LOW_WATER_MARK_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    view: int
    view_changing: bool
    committed_height: int
    low_water_mark: int
    slots: _containers.RepeatedCompositeFieldContainer[PbftSlotStatus]
    replica: int
    def __init__(self, view: _Optional[int] = ..., view_changing: _Optional[bool] = ..., committed_height: _Optional[int] = ..., low_water_mark: _Optional[int] = ..., slots: _Optional[_Iterable[_Union[PbftSlotStatus, _Mapping]]] = ..., replica: _Optional[int] = ...) -> None: ...

class PbftReadQuery(_message.Message):
    __slots__ = ("nonce",)
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    def __init__(self, nonce: _Optional[int] = ...) -> None: ...

class PbftReadAnswer(_message.Message):
    __slots__ = ("nonce", "height", "proof")
    NONCE_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    height: int
    proof: _containers.RepeatedCompositeFieldContainer[SignedConsensusMessage]
    def __init__(self, nonce: _Optional[int] = ..., height: _Optional[int] = ..., proof: _Optional[_Iterable[_Union[SignedConsensusMessage, _Mapping]]] = ...) -> None: ...

class RaftMessage(_message.Message):
    __slots__ = ("request_vote", "request_vote_response", "append_entries", "append_entries_response", "timeout_now", "install_snapshot", "install_snapshot_response")
    REQUEST_VOTE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_VOTE_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    APPEND_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    APPEND_ENTRIES_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_NOW_FIELD_NUMBER: _ClassVar[int]
    INSTALL_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    INSTALL_SNAPSHOT_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    request_vote: RaftRequestVote
    request_vote_response: RaftRequestVoteResponse
    append_entries: RaftAppendEntries
    append_entries_response: RaftAppendEntriesResponse
    timeout_now: RaftTimeoutNow
    install_snapshot: RaftInstallSnapshot
    install_snapshot_response: RaftInstallSnapshotResponse
    def __init__(self, request_vote: _Optional[_Union[RaftRequestVote, _Mapping]] = ..., request_vote_response: _Optional[_Union[RaftRequestVoteResponse, _Mapping]] = ..., append_entries: _Optional[_Union[RaftAppendEntries, _Mapping]] = ..., append_entries_response: _Optional[_Union[RaftAppendEntriesResponse, _Mapping]] = ..., timeout_now: _Optional[_Union[RaftTimeoutNow, _Mapping]] = ..., install_snapshot: _Optional[_Union[RaftInstallSnapshot, _Mapping]] = ..., install_snapshot_response: _Optional[_Union[RaftInstallSnapshotResponse, _Mapping]] = ...) -> None: ...

class RaftRequestVote(_message.Message):
    __slots__ = ("term", "candidate", "last_log_index", "last_log_term", "pre_vote", "leader_transfer")
    TERM_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    LAST_LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    LAST_LOG_TERM_FIELD_NUMBER: _ClassVar[int]
    PRE_VOTE_FIELD_NUMBER: _ClassVar[int]
    LEADER_TRANSFER_FIELD_NUMBER: _ClassVar[int]
    term: int
    candidate: int
    last_log_index: int
    last_log_term: int
    pre_vote: bool
    leader_transfer: bool
    def __init__(self, term: _Optional[int] = ..., candidate: _Optional[int] = ..., last_log_index: _Optional[int] = ..., last_log_term: _Optional[int] = ..., pre_vote: _Optional[bool] = ..., leader_transfer: _Optional[bool] = ...) -> None: ...

class RaftRequestVoteResponse(_message.Message):
    __slots__ = ("term", "voter", "granted", "pre_vote")
    TERM_FIELD_NUMBER: _ClassVar[int]
    VOTER_FIELD_NUMBER: _ClassVar[int]
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    PRE_VOTE_FIELD_NUMBER: _ClassVar[int]
    term: int
    voter: int
    granted: bool
    pre_vote: bool
    def __init__(self, term: _Optional[int] = ..., voter: _Optional[int] = ..., granted: _Optional[bool] = ..., pre_vote: _Optional[bool] = ...) -> None: ...

class RaftEntry(_message.Message):
    __slots__ = ("term", "index", "block")
    TERM_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    term: int
    index: int
    block: _block_pb2.Block
    def __init__(self, term: _Optional[int] = ..., index: _Optional[int] = ..., block: _Optional[_Union[_block_pb2.Block, _Mapping]] = ...) -> None: ...

class RaftAppendEntries(_message.Message):
    __slots__ = ("term", "leader", "prev_log_index", "prev_log_term", "entries", "leader_commit", "read_context", "commit_hashes")
    TERM_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    PREV_LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    PREV_LOG_TERM_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    LEADER_COMMIT_FIELD_NUMBER: _ClassVar[int]
    READ_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    COMMIT_HASHES_FIELD_NUMBER: _ClassVar[int]
    term: int
    leader: int
    prev_log_index: int
    prev_log_term: int
    entries: _containers.RepeatedCompositeFieldContainer[RaftEntry]
    leader_commit: int
    read_context: int
    commit_hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, term: _Optional[int] = ..., leader: _Optional[int] = ..., prev_log_index: _Optional[int] = ..., prev_log_term: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[RaftEntry, _Mapping]]] = ..., leader_commit: _Optional[int] = ..., read_context: _Optional[int] = ..., commit_hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class RaftAppendEntriesResponse(_message.Message):
    __slots__ = ("term", "follower", "success", "match_index", "reject_hint_index", "reject_hint_term", "read_context", "match_term", "match_hashes", "commit_index")
    TERM_FIELD_NUMBER: _ClassVar[int]
    FOLLOWER_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MATCH_INDEX_FIELD_NUMBER: _ClassVar[int]
    REJECT_HINT_INDEX_FIELD_NUMBER: _ClassVar[int]
    REJECT_HINT_TERM_FIELD_NUMBER: _ClassVar[int]
    READ_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    MATCH_TERM_FIELD_NUMBER: _ClassVar[int]
    MATCH_HASHES_FIELD_NUMBER: _ClassVar[int]
    COMMIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    term: int
    follower: int
    success: bool
    match_index: int
    reject_hint_index: int
    reject_hint_term: int
    read_context: int
    match_term: int
    match_hashes: _containers.RepeatedScalarFieldContainer[bytes]
    commit_index: int
    def __init__(self, term: _Optional[int] = ..., follower: _Optional[int] = ..., success: _Optional[bool] = ..., match_index: _Optional[int] = ..., reject_hint_index: _Optional[int] = ..., reject_hint_term: _Optional[int] = ..., read_context: _Optional[int] = ..., match_term: _Optional[int] = ..., match_hashes: _Optional[_Iterable[bytes]] = ..., commit_index: _Optional[int] = ...) -> None: ...

class RaftTimeoutNow(_message.Message):
    __slots__ = ("term", "leader")
    TERM_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    term: int
    leader: int
    def __init__(self, term: _Optional[int] = ..., leader: _Optional[int] = ...) -> None: ...

class RaftInstallSnapshot(_message.Message):
    __slots__ = ("term", "leader", "last_included_index", "last_included_term", "last_included_hash", "state_root")
    TERM_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    LAST_INCLUDED_INDEX_FIELD_NUMBER: _ClassVar[int]
    LAST_INCLUDED_TERM_FIELD_NUMBER: _ClassVar[int]
    LAST_INCLUDED_HASH_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    term: int
    leader: int
    last_included_index: int
    last_included_term: int
    last_included_hash: bytes
    state_root: bytes
    def __init__(self, term: _Optional[int] = ..., leader: _Optional[int] = ..., last_included_index: _Optional[int] = ..., last_included_term: _Optional[int] = ..., last_included_hash: _Optional[bytes] = ..., state_root: _Optional[bytes] = ...) -> None: ...

class RaftInstallSnapshotResponse(_message.Message):
    __slots__ = ("term", "follower", "match_index")
    TERM_FIELD_NUMBER: _ClassVar[int]
    FOLLOWER_FIELD_NUMBER: _ClassVar[int]
    MATCH_INDEX_FIELD_NUMBER: _ClassVar[int]
    term: int
    follower: int
    match_index: int
    def __init__(self, term: _Optional[int] = ..., follower: _Optional[int] = ..., match_index: _Optional[int] = ...) -> None: ...

class HotStuffMessage(_message.Message):
    __slots__ = ("proposal", "vote", "new_view", "timeout", "batch", "block_request", "block_response", "read_query", "read_answer")
    PROPOSAL_FIELD_NUMBER: _ClassVar[int]
    VOTE_FIELD_NUMBER: _ClassVar[int]
    NEW_VIEW_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    BLOCK_REQUEST_FIELD_NUMBER: _ClassVar[int]
    BLOCK_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    READ_QUERY_FIELD_NUMBER: _ClassVar[int]
    READ_ANSWER_FIELD_NUMBER: _ClassVar[int]
    proposal: HotStuffProposal
    vote: HotStuffVote
    new_view: HotStuffNewView
    timeout: HotStuffTimeout
    batch: HotStuffBatch
    block_request: HotStuffBlockRequest
    block_response: HotStuffBlockResponse
    read_query: HotStuffReadQuery
    read_answer: HotStuffReadAnswer
    def __init__(self, proposal: _Optional[_Union[HotStuffProposal, _Mapping]] = ..., vote: _Optional[_Union[HotStuffVote, _Mapping]] = ..., new_view: _Optional[_Union[HotStuffNewView, _Mapping]] = ..., timeout: _Optional[_Union[HotStuffTimeout, _Mapping]] = ..., batch: _Optional[_Union[HotStuffBatch, _Mapping]] = ..., block_request: _Optional[_Union[HotStuffBlockRequest, _Mapping]] = ..., block_response: _Optional[_Union[HotStuffBlockResponse, _Mapping]] = ..., read_query: _Optional[_Union[HotStuffReadQuery, _Mapping]] = ..., read_answer: _Optional[_Union[HotStuffReadAnswer, _Mapping]] = ...) -> None: ...

class HotStuffVote(_message.Message):
    __slots__ = ("round", "height", "block_hash", "parent_round", "parent_hash", "voter")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    PARENT_ROUND_FIELD_NUMBER: _ClassVar[int]
    PARENT_HASH_FIELD_NUMBER: _ClassVar[int]
    VOTER_FIELD_NUMBER: _ClassVar[int]
    round: int
    height: int
    block_hash: bytes
    parent_round: int
    parent_hash: bytes
    voter: int
    def __init__(self, round: _Optional[int] = ..., height: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., parent_round: _Optional[int] = ..., parent_hash: _Optional[bytes] = ..., voter: _Optional[int] = ...) -> None: ...

class HotStuffQuorumCertificate(_message.Message):
    __slots__ = ("round", "height", "block_hash", "parent_round", "parent_hash", "votes")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    PARENT_ROUND_FIELD_NUMBER: _ClassVar[int]
    PARENT_HASH_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    round: int
    height: int
    block_hash: bytes
    parent_round: int
    parent_hash: bytes
    votes: _containers.RepeatedCompositeFieldContainer[SignedConsensusMessage]
    def __init__(self, round: _Optional[int] = ..., height: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., parent_round: _Optional[int] = ..., parent_hash: _Optional[bytes] = ..., votes: _Optional[_Iterable[_Union[SignedConsensusMessage, _Mapping]]] = ...) -> None: ...

class HotStuffTimeout(_message.Message):
    __slots__ = ("round", "high_qc_round", "voter")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    HIGH_QC_ROUND_FIELD_NUMBER: _ClassVar[int]
    VOTER_FIELD_NUMBER: _ClassVar[int]
    round: int
    high_qc_round: int
    voter: int
    def __init__(self, round: _Optional[int] = ..., high_qc_round: _Optional[int] = ..., voter: _Optional[int] = ...) -> None: ...

class HotStuffTimeoutCertificate(_message.Message):
    __slots__ = ("round", "timeouts")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    TIMEOUTS_FIELD_NUMBER: _ClassVar[int]
    round: int
    timeouts: _containers.RepeatedCompositeFieldContainer[SignedConsensusMessage]
    def __init__(self, round: _Optional[int] = ..., timeouts: _Optional[_Iterable[_Union[SignedConsensusMessage, _Mapping]]] = ...) -> None: ...

class HotStuffProposal(_message.Message):
    __slots__ = ("round", "block", "justify", "last_round_tc")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    JUSTIFY_FIELD_NUMBER: _ClassVar[int]
    LAST_ROUND_TC_FIELD_NUMBER: _ClassVar[int]
    round: int
    block: _block_pb2.Block
    justify: HotStuffQuorumCertificate
    last_round_tc: HotStuffTimeoutCertificate
    def __init__(self, round: _Optional[int] = ..., block: _Optional[_Union[_block_pb2.Block, _Mapping]] = ..., justify: _Optional[_Union[HotStuffQuorumCertificate, _Mapping]] = ..., last_round_tc: _Optional[_Union[HotStuffTimeoutCertificate, _Mapping]] = ...) -> None: ...

class HotStuffNewView(_message.Message):
    __slots__ = ("timeout", "high_qc", "last_round_tc")
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    HIGH_QC_FIELD_NUMBER: _ClassVar[int]
    LAST_ROUND_TC_FIELD_NUMBER: _ClassVar[int]
    timeout: SignedConsensusMessage
    high_qc: HotStuffQuorumCertificate
    last_round_tc: HotStuffTimeoutCertificate
    def __init__(self, timeout: _Optional[_Union[SignedConsensusMessage, _Mapping]] = ..., high_qc: _Optional[_Union[HotStuffQuorumCertificate, _Mapping]] = ..., last_round_tc: _Optional[_Union[HotStuffTimeoutCertificate, _Mapping]] = ...) -> None: ...

class HotStuffBatch(_message.Message):
    __slots__ = ("txs", "hops", "absent_through_height")
    TXS_FIELD_NUMBER: _ClassVar[int]
    HOPS_FIELD_NUMBER: _ClassVar[int]
    ABSENT_THROUGH_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    txs: _containers.RepeatedScalarFieldContainer[bytes]
    hops: int
    absent_through_height: int
    def __init__(self, txs: _Optional[_Iterable[bytes]] = ..., hops: _Optional[int] = ..., absent_through_height: _Optional[int] = ...) -> None: ...

class HotStuffBlockRequest(_message.Message):
    __slots__ = ("block_hash", "count")
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    block_hash: bytes
    count: int
    def __init__(self, block_hash: _Optional[bytes] = ..., count: _Optional[int] = ...) -> None: ...

class HotStuffBlockResponse(_message.Message):
    __slots__ = ("blocks", "justifies")
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    JUSTIFIES_FIELD_NUMBER: _ClassVar[int]
    blocks: _containers.RepeatedCompositeFieldContainer[_block_pb2.Block]
    justifies: _containers.RepeatedCompositeFieldContainer[HotStuffQuorumCertificate]
    def __init__(self, blocks: _Optional[_Iterable[_Union[_block_pb2.Block, _Mapping]]] = ..., justifies: _Optional[_Iterable[_Union[HotStuffQuorumCertificate, _Mapping]]] = ...) -> None: ...

class HotStuffReadQuery(_message.Message):
    __slots__ = ("nonce",)
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    def __init__(self, nonce: _Optional[int] = ...) -> None: ...

class HotStuffReadAnswer(_message.Message):
    __slots__ = ("nonce", "height", "proof")
    NONCE_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    height: int
    proof: _containers.RepeatedCompositeFieldContainer[SignedConsensusMessage]
    def __init__(self, nonce: _Optional[int] = ..., height: _Optional[int] = ..., proof: _Optional[_Iterable[_Union[SignedConsensusMessage, _Mapping]]] = ...) -> None: ...

class TendermintMessage(_message.Message):
    __slots__ = ("proposal", "vote", "duplicate_vote_evidence", "votes", "read_query", "read_answer")
    PROPOSAL_FIELD_NUMBER: _ClassVar[int]
    VOTE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_VOTE_EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    READ_QUERY_FIELD_NUMBER: _ClassVar[int]
    READ_ANSWER_FIELD_NUMBER: _ClassVar[int]
    proposal: TendermintProposal
    vote: TendermintVote
    duplicate_vote_evidence: TendermintDuplicateVoteEvidence
    votes: TendermintVotes
    read_query: TendermintReadQuery
    read_answer: TendermintReadAnswer
    def __init__(self, proposal: _Optional[_Union[TendermintProposal, _Mapping]] = ..., vote: _Optional[_Union[TendermintVote, _Mapping]] = ..., duplicate_vote_evidence: _Optional[_Union[TendermintDuplicateVoteEvidence, _Mapping]] = ..., votes: _Optional[_Union[TendermintVotes, _Mapping]] = ..., read_query: _Optional[_Union[TendermintReadQuery, _Mapping]] = ..., read_answer: _Optional[_Union[TendermintReadAnswer, _Mapping]] = ...) -> None: ...

class TendermintProposal(_message.Message):
    __slots__ = ("height", "round", "block", "pol_round", "proposer", "last_commit")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    POL_ROUND_FIELD_NUMBER: _ClassVar[int]
    PROPOSER_FIELD_NUMBER: _ClassVar[int]
    LAST_COMMIT_FIELD_NUMBER: _ClassVar[int]
    height: int
    round: int
    block: _block_pb2.Block
    pol_round: int
    proposer: int
    last_commit: _containers.RepeatedCompositeFieldContainer[SignedConsensusMessage]
    def __init__(self, height: _Optional[int] = ..., round: _Optional[int] = ..., block: _Optional[_Union[_block_pb2.Block, _Mapping]] = ..., pol_round: _Optional[int] = ..., proposer: _Optional[int] = ..., last_commit: _Optional[_Iterable[_Union[SignedConsensusMessage, _Mapping]]] = ...) -> None: ...

class TendermintVote(_message.Message):
    __slots__ = ("height", "round", "step", "block_hash", "validator")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_FIELD_NUMBER: _ClassVar[int]
    height: int
    round: int
    step: TendermintVoteStep
    block_hash: bytes
    validator: int
    def __init__(self, height: _Optional[int] = ..., round: _Optional[int] = ..., step: _Optional[_Union[TendermintVoteStep, str]] = ..., block_hash: _Optional[bytes] = ..., validator: _Optional[int] = ...) -> None: ...

class TendermintDuplicateVoteEvidence(_message.Message):
    __slots__ = ("vote_a", "vote_b")
    VOTE_A_FIELD_NUMBER: _ClassVar[int]
    VOTE_B_FIELD_NUMBER: _ClassVar[int]
    vote_a: SignedConsensusMessage
    vote_b: SignedConsensusMessage
    def __init__(self, vote_a: _Optional[_Union[SignedConsensusMessage, _Mapping]] = ..., vote_b: _Optional[_Union[SignedConsensusMessage, _Mapping]] = ...) -> None: ...

class TendermintVotes(_message.Message):
    __slots__ = ("height", "round", "votes")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    height: int
    round: int
    votes: _containers.RepeatedCompositeFieldContainer[SignedConsensusMessage]
    def __init__(self, height: _Optional[int] = ..., round: _Optional[int] = ..., votes: _Optional[_Iterable[_Union[SignedConsensusMessage, _Mapping]]] = ...) -> None: ...

class TendermintReadQuery(_message.Message):
    __slots__ = ("nonce",)
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    def __init__(self, nonce: _Optional[int] = ...) -> None: ...

class TendermintReadAnswer(_message.Message):
    __slots__ = ("nonce", "height", "proof")
    NONCE_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    height: int
    proof: _containers.RepeatedCompositeFieldContainer[SignedConsensusMessage]
    def __init__(self, nonce: _Optional[int] = ..., height: _Optional[int] = ..., proof: _Optional[_Iterable[_Union[SignedConsensusMessage, _Mapping]]] = ...) -> None: ...

class SyncMessage(_message.Message):
    __slots__ = ("request", "response", "status", "read_index_request", "read_index_answer")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    READ_INDEX_REQUEST_FIELD_NUMBER: _ClassVar[int]
    READ_INDEX_ANSWER_FIELD_NUMBER: _ClassVar[int]
    request: SyncRequest
    response: SyncResponse
    status: SyncStatus
    read_index_request: ReadIndexRequest
    read_index_answer: ReadIndexAnswer
    def __init__(self, request: _Optional[_Union[SyncRequest, _Mapping]] = ..., response: _Optional[_Union[SyncResponse, _Mapping]] = ..., status: _Optional[_Union[SyncStatus, _Mapping]] = ..., read_index_request: _Optional[_Union[ReadIndexRequest, _Mapping]] = ..., read_index_answer: _Optional[_Union[ReadIndexAnswer, _Mapping]] = ...) -> None: ...

class ReadIndexRequest(_message.Message):
    __slots__ = ("request_id", "origin")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    origin: int
    def __init__(self, request_id: _Optional[int] = ..., origin: _Optional[int] = ...) -> None: ...

class ReadIndexAnswer(_message.Message):
    __slots__ = ("request_id", "index", "responder", "refused")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    RESPONDER_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    index: int
    responder: int
    refused: str
    def __init__(self, request_id: _Optional[int] = ..., index: _Optional[int] = ..., responder: _Optional[int] = ..., refused: _Optional[str] = ...) -> None: ...

class SyncStatus(_message.Message):
    __slots__ = ("height", "block_hash", "node")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    height: int
    block_hash: bytes
    node: int
    def __init__(self, height: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., node: _Optional[int] = ...) -> None: ...

class SyncRequest(_message.Message):
    __slots__ = ("from_height", "max_blocks", "requester")
    FROM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    from_height: int
    max_blocks: int
    requester: int
    def __init__(self, from_height: _Optional[int] = ..., max_blocks: _Optional[int] = ..., requester: _Optional[int] = ...) -> None: ...

class SyncResponse(_message.Message):
    __slots__ = ("blocks", "tip_height", "responder")
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    TIP_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    RESPONDER_FIELD_NUMBER: _ClassVar[int]
    blocks: _containers.RepeatedCompositeFieldContainer[CommittedBlock]
    tip_height: int
    responder: int
    def __init__(self, blocks: _Optional[_Iterable[_Union[CommittedBlock, _Mapping]]] = ..., tip_height: _Optional[int] = ..., responder: _Optional[int] = ...) -> None: ...

class TransactionBatch(_message.Message):
    __slots__ = ("txs", "origin")
    TXS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    txs: _containers.RepeatedScalarFieldContainer[bytes]
    origin: int
    def __init__(self, txs: _Optional[_Iterable[bytes]] = ..., origin: _Optional[int] = ...) -> None: ...
