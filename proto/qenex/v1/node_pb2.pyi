from proto.qenex.v1 import transaction_pb2 as _transaction_pb2
from proto.qenex.v1 import block_pb2 as _block_pb2
from proto.qenex.v1 import consensus_pb2 as _consensus_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUBMIT_STATUS_UNSPECIFIED: _ClassVar[SubmitStatus]
    ACCEPTED: _ClassVar[SubmitStatus]
    COMMITTED: _ClassVar[SubmitStatus]
    REJECTED: _ClassVar[SubmitStatus]
    DUPLICATE: _ClassVar[SubmitStatus]

class ReadConsistency(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    READ_CONSISTENCY_UNSPECIFIED: _ClassVar[ReadConsistency]
    LINEARIZABLE: _ClassVar[ReadConsistency]
    LOCAL: _ClassVar[ReadConsistency]
SUBMIT_STATUS_UNSPECIFIED: SubmitStatus
ACCEPTED: SubmitStatus
COMMITTED: SubmitStatus
REJECTED: SubmitStatus
DUPLICATE: SubmitStatus
READ_CONSISTENCY_UNSPECIFIED: ReadConsistency
LINEARIZABLE: ReadConsistency
LOCAL: ReadConsistency

class SubmitTransactionRequest(_message.Message):
    __slots__ = ("tx", "wait_for_commit", "timeout_ms")
    TX_FIELD_NUMBER: _ClassVar[int]
    WAIT_FOR_COMMIT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    tx: _transaction_pb2.SignedTransaction
    wait_for_commit: bool
    timeout_ms: int
    def __init__(self, tx: _Optional[_Union[_transaction_pb2.SignedTransaction, _Mapping]] = ..., wait_for_commit: _Optional[bool] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class SubmitTransactionResponse(_message.Message):
    __slots__ = ("tx_id", "status", "height", "receipt", "reason", "detail")
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    tx_id: bytes
    status: SubmitStatus
    height: int
    receipt: _transaction_pb2.Receipt
    reason: str
    detail: str
    def __init__(self, tx_id: _Optional[bytes] = ..., status: _Optional[_Union[SubmitStatus, str]] = ..., height: _Optional[int] = ..., receipt: _Optional[_Union[_transaction_pb2.Receipt, _Mapping]] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class ReadOptions(_message.Message):
    __slots__ = ("consistency", "min_height", "timeout_ms")
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    MIN_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    consistency: ReadConsistency
    min_height: int
    timeout_ms: int
    def __init__(self, consistency: _Optional[_Union[ReadConsistency, str]] = ..., min_height: _Optional[int] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class GetTransactionRequest(_message.Message):
    __slots__ = ("tx_id", "prove", "read")
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    PROVE_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    tx_id: bytes
    prove: bool
    read: ReadOptions
    def __init__(self, tx_id: _Optional[bytes] = ..., prove: _Optional[bool] = ..., read: _Optional[_Union[ReadOptions, _Mapping]] = ...) -> None: ...

class MerkleProof(_message.Message):
    __slots__ = ("leaf_index", "leaf_count", "path")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    LEAF_COUNT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    leaf_count: int
    path: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, leaf_index: _Optional[int] = ..., leaf_count: _Optional[int] = ..., path: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GetTransactionResponse(_message.Message):
    __slots__ = ("tx", "receipt", "header", "certificate", "proof", "read_height")
    TX_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    READ_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    tx: _transaction_pb2.SignedTransaction
    receipt: _transaction_pb2.Receipt
    header: _block_pb2.BlockHeader
    certificate: _consensus_pb2.Certificate
    proof: MerkleProof
    read_height: int
    def __init__(self, tx: _Optional[_Union[_transaction_pb2.SignedTransaction, _Mapping]] = ..., receipt: _Optional[_Union[_transaction_pb2.Receipt, _Mapping]] = ..., header: _Optional[_Union[_block_pb2.BlockHeader, _Mapping]] = ..., certificate: _Optional[_Union[_consensus_pb2.Certificate, _Mapping]] = ..., proof: _Optional[_Union[MerkleProof, _Mapping]] = ..., read_height: _Optional[int] = ...) -> None: ...

class GetAccountRequest(_message.Message):
    __slots__ = ("address", "prove", "read")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PROVE_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    address: bytes
    prove: bool
    read: ReadOptions
    def __init__(self, address: _Optional[bytes] = ..., prove: _Optional[bool] = ..., read: _Optional[_Union[ReadOptions, _Mapping]] = ...) -> None: ...

class Balance(_message.Message):
    __slots__ = ("currency", "amount")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    currency: str
    amount: int
    def __init__(self, currency: _Optional[str] = ..., amount: _Optional[int] = ...) -> None: ...

class Account(_message.Message):
    __slots__ = ("address", "scheme", "public_key", "nonce", "balances")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    BALANCES_FIELD_NUMBER: _ClassVar[int]
    address: bytes
    scheme: _transaction_pb2.SignatureScheme
    public_key: bytes
    nonce: int
    balances: _containers.RepeatedCompositeFieldContainer[Balance]
    def __init__(self, address: _Optional[bytes] = ..., scheme: _Optional[_Union[_transaction_pb2.SignatureScheme, str]] = ..., public_key: _Optional[bytes] = ..., nonce: _Optional[int] = ..., balances: _Optional[_Iterable[_Union[Balance, _Mapping]]] = ...) -> None: ...

class StateProof(_message.Message):
    __slots__ = ("height", "state_root", "leaf", "siblings", "scheme", "header", "certificate")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    SIBLINGS_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    height: int
    state_root: bytes
    leaf: bytes
    siblings: _containers.RepeatedScalarFieldContainer[bytes]
    scheme: str
    header: _block_pb2.BlockHeader
    certificate: _consensus_pb2.Certificate
    def __init__(self, height: _Optional[int] = ..., state_root: _Optional[bytes] = ..., leaf: _Optional[bytes] = ..., siblings: _Optional[_Iterable[bytes]] = ..., scheme: _Optional[str] = ..., header: _Optional[_Union[_block_pb2.BlockHeader, _Mapping]] = ..., certificate: _Optional[_Union[_consensus_pb2.Certificate, _Mapping]] = ...) -> None: ...

class GetAccountResponse(_message.Message):
    __slots__ = ("found", "account", "proof", "height", "state_root")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    found: bool
    account: Account
    proof: StateProof
    height: int
    state_root: bytes
    def __init__(self, found: _Optional[bool] = ..., account: _Optional[_Union[Account, _Mapping]] = ..., proof: _Optional[_Union[StateProof, _Mapping]] = ..., height: _Optional[int] = ..., state_root: _Optional[bytes] = ...) -> None: ...

class GetBlockRequest(_message.Message):
    __slots__ = ("height", "block_hash", "read")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    height: int
    block_hash: bytes
    read: ReadOptions
    def __init__(self, height: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., read: _Optional[_Union[ReadOptions, _Mapping]] = ...) -> None: ...

class GetBlockResponse(_message.Message):
    __slots__ = ("block", "read_height")
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    READ_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    block: _consensus_pb2.CommittedBlock
    read_height: int
    def __init__(self, block: _Optional[_Union[_consensus_pb2.CommittedBlock, _Mapping]] = ..., read_height: _Optional[int] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("node_id", "chain_id", "algorithm", "height", "state_root", "block_hash", "view", "leader", "role", "peers_connected", "mempool_txs", "version")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PEERS_CONNECTED_FIELD_NUMBER: _ClassVar[int]
    MEMPOOL_TXS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    chain_id: str
    algorithm: str
    height: int
    state_root: bytes
    block_hash: bytes
    view: int
    leader: int
    role: str
    peers_connected: int
    mempool_txs: int
    version: str
    def __init__(self, node_id: _Optional[int] = ..., chain_id: _Optional[str] = ..., algorithm: _Optional[str] = ..., height: _Optional[int] = ..., state_root: _Optional[bytes] = ..., block_hash: _Optional[bytes] = ..., view: _Optional[int] = ..., leader: _Optional[int] = ..., role: _Optional[str] = ..., peers_connected: _Optional[int] = ..., mempool_txs: _Optional[int] = ..., version: _Optional[str] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("from_height",)
    FROM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    from_height: int
    def __init__(self, from_height: _Optional[int] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("block_committed", "transaction_committed", "leader_changed")
    BLOCK_COMMITTED_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_COMMITTED_FIELD_NUMBER: _ClassVar[int]
    LEADER_CHANGED_FIELD_NUMBER: _ClassVar[int]
    block_committed: BlockCommitted
    transaction_committed: TransactionCommitted
    leader_changed: LeaderChanged
    def __init__(self, block_committed: _Optional[_Union[BlockCommitted, _Mapping]] = ..., transaction_committed: _Optional[_Union[TransactionCommitted, _Mapping]] = ..., leader_changed: _Optional[_Union[LeaderChanged, _Mapping]] = ...) -> None: ...

class BlockCommitted(_message.Message):
    __slots__ = ("height", "block_hash", "state_root", "tx_count", "timestamp_ms")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    TX_COUNT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    height: int
    block_hash: bytes
    state_root: bytes
    tx_count: int
    timestamp_ms: int
    def __init__(self, height: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., state_root: _Optional[bytes] = ..., tx_count: _Optional[int] = ..., timestamp_ms: _Optional[int] = ...) -> None: ...

class TransactionCommitted(_message.Message):
    __slots__ = ("tx_id", "height", "receipt")
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    tx_id: bytes
    height: int
    receipt: _transaction_pb2.Receipt
    def __init__(self, tx_id: _Optional[bytes] = ..., height: _Optional[int] = ..., receipt: _Optional[_Union[_transaction_pb2.Receipt, _Mapping]] = ...) -> None: ...

class LeaderChanged(_message.Message):
    __slots__ = ("view", "leader")
    VIEW_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    view: int
    leader: int
    def __init__(self, view: _Optional[int] = ..., leader: _Optional[int] = ...) -> None: ...

class TransferLeadershipRequest(_message.Message):
    __slots__ = ("to",)
    TO_FIELD_NUMBER: _ClassVar[int]
    to: int
    def __init__(self, to: _Optional[int] = ...) -> None: ...

class TransferLeadershipResponse(_message.Message):
    __slots__ = ("started", "leader")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    started: bool
    leader: int
    def __init__(self, started: _Optional[bool] = ..., leader: _Optional[int] = ...) -> None: ...

class GetEvidenceRequest(_message.Message):
    __slots__ = ("from_height", "to_height", "validator", "limit")
    FROM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TO_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    from_height: int
    to_height: int
    validator: int
    limit: int
    def __init__(self, from_height: _Optional[int] = ..., to_height: _Optional[int] = ..., validator: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class Evidence(_message.Message):
    __slots__ = ("height", "index", "validator", "evidence_height", "round", "vote_type", "block_a", "block_b", "signature_a", "signature_b", "evidence")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    VOTE_TYPE_FIELD_NUMBER: _ClassVar[int]
    BLOCK_A_FIELD_NUMBER: _ClassVar[int]
    BLOCK_B_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_A_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_B_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    height: int
    index: int
    validator: int
    evidence_height: int
    round: int
    vote_type: _consensus_pb2.TendermintVoteStep
    block_a: bytes
    block_b: bytes
    signature_a: bytes
    signature_b: bytes
    evidence: bytes
    def __init__(self, height: _Optional[int] = ..., index: _Optional[int] = ..., validator: _Optional[int] = ..., evidence_height: _Optional[int] = ..., round: _Optional[int] = ..., vote_type: _Optional[_Union[_consensus_pb2.TendermintVoteStep, str]] = ..., block_a: _Optional[bytes] = ..., block_b: _Optional[bytes] = ..., signature_a: _Optional[bytes] = ..., signature_b: _Optional[bytes] = ..., evidence: _Optional[bytes] = ...) -> None: ...

class GetEvidenceResponse(_message.Message):
    __slots__ = ("items", "next_height")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Evidence]
    next_height: int
    def __init__(self, items: _Optional[_Iterable[_Union[Evidence, _Mapping]]] = ..., next_height: _Optional[int] = ...) -> None: ...
