from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BlockHeader(_message.Message):
    __slots__ = ("chain_id", "height", "parent_hash", "tx_root", "state_height", "state_root", "proposer", "timestamp_ms")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PARENT_HASH_FIELD_NUMBER: _ClassVar[int]
    TX_ROOT_FIELD_NUMBER: _ClassVar[int]
    STATE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    PROPOSER_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    height: int
    parent_hash: bytes
    tx_root: bytes
    state_height: int
    state_root: bytes
    proposer: int
    timestamp_ms: int
    def __init__(self, chain_id: _Optional[str] = ..., height: _Optional[int] = ..., parent_hash: _Optional[bytes] = ..., tx_root: _Optional[bytes] = ..., state_height: _Optional[int] = ..., state_root: _Optional[bytes] = ..., proposer: _Optional[int] = ..., timestamp_ms: _Optional[int] = ...) -> None: ...

class Block(_message.Message):
    __slots__ = ("header", "txs")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TXS_FIELD_NUMBER: _ClassVar[int]
    header: BlockHeader
    txs: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, header: _Optional[_Union[BlockHeader, _Mapping]] = ..., txs: _Optional[_Iterable[bytes]] = ...) -> None: ...
