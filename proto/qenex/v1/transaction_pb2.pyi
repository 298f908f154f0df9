from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SignatureScheme(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNATURE_SCHEME_UNSPECIFIED: _ClassVar[SignatureScheme]
    ED25519: _ClassVar[SignatureScheme]
    ML_DSA_44: _ClassVar[SignatureScheme]
    ML_DSA_65: _ClassVar[SignatureScheme]
    ML_DSA_87: _ClassVar[SignatureScheme]
SIGNATURE_SCHEME_UNSPECIFIED: SignatureScheme
ED25519: SignatureScheme
ML_DSA_44: SignatureScheme
ML_DSA_65: SignatureScheme
ML_DSA_87: SignatureScheme

class SignedTransaction(_message.Message):
    __slots__ = ("body", "scheme", "public_key", "signature")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    scheme: SignatureScheme
    public_key: bytes
    signature: bytes
    def __init__(self, body: _Optional[bytes] = ..., scheme: _Optional[_Union[SignatureScheme, str]] = ..., public_key: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class TransactionBody(_message.Message):
    __slots__ = ("chain_id", "sender", "nonce", "valid_until_ms", "create_account", "transfer", "issue", "redeem")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    CREATE_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_FIELD_NUMBER: _ClassVar[int]
    ISSUE_FIELD_NUMBER: _ClassVar[int]
    REDEEM_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    sender: bytes
    nonce: int
    valid_until_ms: int
    create_account: CreateAccount
    transfer: Transfer
    issue: Issue
    redeem: Redeem
    def __init__(self, chain_id: _Optional[str] = ..., sender: _Optional[bytes] = ..., nonce: _Optional[int] = ..., valid_until_ms: _Optional[int] = ..., create_account: _Optional[_Union[CreateAccount, _Mapping]] = ..., transfer: _Optional[_Union[Transfer, _Mapping]] = ..., issue: _Optional[_Union[Issue, _Mapping]] = ..., redeem: _Optional[_Union[Redeem, _Mapping]] = ...) -> None: ...

class CreateAccount(_message.Message):
    __slots__ = ("scheme", "public_key")
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    scheme: SignatureScheme
    public_key: bytes
    def __init__(self, scheme: _Optional[_Union[SignatureScheme, str]] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class Transfer(_message.Message):
    __slots__ = ("to", "amount", "currency", "memo")
    TO_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    to: bytes
    amount: int
    currency: str
    memo: str
    def __init__(self, to: _Optional[bytes] = ..., amount: _Optional[int] = ..., currency: _Optional[str] = ..., memo: _Optional[str] = ...) -> None: ...

class Issue(_message.Message):
    __slots__ = ("to", "amount", "currency")
    TO_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    to: bytes
    amount: int
    currency: str
    def __init__(self, to: _Optional[bytes] = ..., amount: _Optional[int] = ..., currency: _Optional[str] = ...) -> None: ...

class Redeem(_message.Message):
    __slots__ = ("amount", "currency")
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    amount: int
    currency: str
    def __init__(self, amount: _Optional[int] = ..., currency: _Optional[str] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("tx_id", "height", "index", "success", "reason", "reason_text")
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_TEXT_FIELD_NUMBER: _ClassVar[int]
    tx_id: bytes
    height: int
    index: int
    success: bool
    reason: int
    reason_text: str
    def __init__(self, tx_id: _Optional[bytes] = ..., height: _Optional[int] = ..., index: _Optional[int] = ..., success: _Optional[bool] = ..., reason: _Optional[int] = ..., reason_text: _Optional[str] = ...) -> None: ...
