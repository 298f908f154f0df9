"""Domain dataclasses <-> protobuf (qenex.v1), generically, for peer-to-peer messages.

Why generic: engines are written in parallel and their message sets grow. Each engine
message is a frozen dataclass registered with `consensus.canonical`, living under
`consensus.<engine>`, whose fields are named exactly like the proto message
`<Prefix><ClassName>` (PBFT `PrePrepare` <-> `PbftPrePrepare`, its oneof field in
`PbftMessage` is `pre_prepare`). The codec walks the dataclass type hints and the proto
descriptors once per class (cached "plans"), so a new engine message needs no code here;
a dataclass field with no proto counterpart is a CodecError naming class and field.

Invariant: `decode(encode(m)) == m` for every message. The receiver rebuilds
`signing_bytes(chain_id, decoded)` from the decoded dataclass and checks the sender's
signature over it, so any lossy mapping would make honest messages fail verification.

Decoding never trusts the peer: every failure (bad protobuf, unknown oneof, missing
nested message, integer or hash length out of range, domain validation) is a CodecError
with a reason name, for counting and logging. Nothing else escapes `decode_envelope`.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

from google.protobuf import message as pb_message
from google.protobuf.descriptor import FieldDescriptor

from consensus import canonical
from consensus.types import HASH_BYTES, PROTOCOL_VERSION
from proto.qenex.v1 import block_pb2, consensus_pb2

ENVELOPE_BYTES_MAX = 8 * 1024 * 1024  # default; the runtime passes its frame_bytes_max
SIGNED_NESTING_MAX = 3  # signed messages inside signed messages (see read_consensus_message)


class Reason:
    """Reason names carried by CodecError (metric labels: keep them stable)."""
    MALFORMED = "MALFORMED"  # not a parsable envelope / structurally wrong
    OVERSIZED = "OVERSIZED"  # over envelope_bytes_max, refused before parsing
    BAD_VERSION = "BAD_VERSION"
    WRONG_CHAIN = "WRONG_CHAIN"
    UNKNOWN_SENDER = "UNKNOWN_SENDER"
    UNKNOWN_MESSAGE = "UNKNOWN_MESSAGE"  # oneof kind we have no dataclass for
    MISSING_FIELD = "MISSING_FIELD"  # required nested message absent
    OUT_OF_RANGE = "OUT_OF_RANGE"  # integer outside what the field allows
    BAD_LENGTH = "BAD_LENGTH"  # fixed-length bytes (hashes) of the wrong length
    BAD_VALUE = "BAD_VALUE"  # enum value unknown, or the dataclass refused the values
    UNMAPPED = "UNMAPPED"  # schema mismatch between a dataclass and the proto (a bug)


class CodecError(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Envelope:
    sender: int
    message: object
    signature: bytes


# ------------------------------------------------------------------ schema mapping
@dataclass(frozen=True, slots=True)
class _Family:
    module: str  # package prefix of the engine's dataclasses
    proto_prefix: str  # PbftPrePrepare = "Pbft" + "PrePrepare"
    oneof_field: str  # field of ConsensusMessage holding the family's wrapper


_FAMILIES = (
    _Family("consensus.pbft", "Pbft", "pbft"),
    _Family("consensus.raft", "Raft", "raft"),
    _Family("consensus.hotstuff", "HotStuff", "hotstuff"),
    _Family("consensus.tendermint", "Tendermint", "tendermint"),
)
_FAMILY_BY_FIELD = {f.oneof_field: f for f in _FAMILIES}

# Shared types: canonical wire name -> proto message name (and the module defining it).
_SHARED = {
    "qenex.block.v1": "Block",
    "qenex.block_header.v1": "BlockHeader",
    "qenex.certificate.v1": "Certificate",
    "qenex.signed_message.v1": "SignedConsensusMessage",
    "sync.committed_block.v1": "CommittedBlock",
    "sync.request.v1": "SyncRequest",
    "sync.response.v1": "SyncResponse",
    "sync.status.v1": "SyncStatus",
    "sync.read_index_request.v1": "ReadIndexRequest",
    "sync.read_index_answer.v1": "ReadIndexAnswer",
    "tx.batch.v1": "TransactionBatch",
}
_SHARED_MODULES = ("consensus.types", "qenex_node.core.sync", "qenex_node.core.reads")
# Shared types that may be a top-level message: ConsensusMessage field, inner oneof field.
_SHARED_TOP = {
    "SyncRequest": ("sync", "request"),
    "SyncResponse": ("sync", "response"),
    "SyncStatus": ("sync", "status"),
    "ReadIndexRequest": ("sync", "read_index_request"),
    "ReadIndexAnswer": ("sync", "read_index_answer"),
    "TransactionBatch": ("transactions", None),
}
_SHARED_BY_TOP = {v: k for k, v in _SHARED_TOP.items()}

# Derived fields: recomputed by the dataclass itself, never carried on the wire.
_DERIVED = {("Block", "block_hash")}
# Hash-like fields that may be empty (nil vote in Tendermint); all others are 32 bytes.
_EMPTY_HASH_ALLOWED = {("TendermintVote", "block_hash")}
# Signed proto integers whose domain allows negatives: (proto message, field) -> minimum.
_SIGNED_MIN = {("TendermintProposal", "pol_round"): -1}

_INT_BOUNDS = {
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1), FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1), FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_INT32: (-2**31, 2**31 - 1), FieldDescriptor.TYPE_SINT32: (-2**31, 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-2**63, 2**63 - 1), FieldDescriptor.TYPE_SINT64: (-2**63, 2**63 - 1),
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _full_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _family_of(cls: type) -> _Family | None:
    for family in _FAMILIES:
        if cls.__module__ == family.module or cls.__module__.startswith(family.module + "."):
            return family
    return None


def _proto_class(name: str) -> type[pb_message.Message]:
    for module in (consensus_pb2, block_pb2):
        proto = getattr(module, name, None)
        if isinstance(proto, type) and issubclass(proto, pb_message.Message):
            return proto
    raise KeyError(name)


def _wire_name(cls: type) -> str | None:
    try:
        return canonical.wire_name(cls)
    except canonical.CanonicalError:
        return None


def proto_name_of(cls: type) -> str:
    """The proto message name a dataclass maps to, or CodecError(UNMAPPED)."""
    name = _SHARED.get(_wire_name(cls) or "")
    if name is None:
        family = _family_of(cls)
        if family is None:
            raise CodecError(Reason.UNMAPPED, f"{_full_name(cls)} is not a wire type")
        name = family.proto_prefix + cls.__qualname__
    try:
        _proto_class(name)
    except KeyError:
        raise CodecError(Reason.UNMAPPED,
                         f"{_full_name(cls)} has no proto message qenex.v1.{name}") from None
    return name


# ------------------------------------------------------------------ runtime discovery
_imported_families: set[str] = set()


def _registered_class(module_prefix: str, qualname: str) -> type | None:
    # The canonical registry holds every signable dataclass that has been imported; it is
    # the authority on "which engine messages exist" (engines may not be written yet).
    found = [cls for cls in list(canonical.registered_types().values())
             if cls.__qualname__ == qualname and dataclasses.is_dataclass(cls)
             and (cls.__module__ == module_prefix
                  or cls.__module__.startswith(module_prefix + "."))]
    if len(found) > 1:
        raise CodecError(Reason.UNMAPPED, f"two registered classes {qualname} under "
                         f"{module_prefix}: {sorted(map(_full_name, found))}")
    return found[0] if found else None


def _import_family(module_prefix: str) -> None:
    # Importing the package (and its conventional `messages` module) registers its
    # dataclasses; tried once per family, a missing engine is simply "unknown message".
    if module_prefix in _imported_families:
        return
    _imported_families.add(module_prefix)
    for name in (module_prefix, module_prefix + ".messages"):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise  # the engine exists but is itself broken: a bug, fail loudly


def find_message_class(family: _Family, proto_name: str) -> type | None:
    """The dataclass for proto message `proto_name` of an engine family, if it exists."""
    qualname = proto_name[len(family.proto_prefix):]
    cls = _registered_class(family.module, qualname)
    if cls is None:
        _import_family(family.module)
        cls = _registered_class(family.module, qualname)
    return cls


def _shared_class(proto_name: str) -> type:
    wire = next(k for k, v in _SHARED.items() if v == proto_name)
    for module in _SHARED_MODULES:
        importlib.import_module(module)
    return canonical.registered_types()[wire]


# ------------------------------------------------------------------ field plans
@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    kind: str  # "int" | "bool" | "str" | "bytes" | "enum" | "message" | "object"
    repeated: bool
    optional: bool  # message fields only: None <-> unset
    target: Any  # dataclass (message), IntEnum class (enum), else None
    proto_type: int
    int_min: int
    int_max: int
    fixed_bytes: int | None  # exact length for hash-like bytes fields
    empty_ok: bool  # a fixed-length field that may also be empty (nil)


@dataclass(frozen=True, slots=True)
class _Plan:
    cls: type
    proto_name: str
    proto_cls: type[pb_message.Message]
    fields: tuple[_Field, ...]


def _unwrap(hint: Any) -> tuple[Any, bool, bool]:
    """(item type, repeated, optional) of a type hint."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) != 1 or len(typing.get_args(hint)) != 2:
            return hint, False, False  # not X | None: refused by _kind_of
        return args[0], False, True
    if origin is tuple:
        items = typing.get_args(hint)
        if len(items) == 2 and items[1] is Ellipsis:
            return items[0], True, False
    return hint, False, False


def _kind_of(item: Any) -> str | None:
    if item is object:
        return "object"
    if isinstance(item, type):
        if issubclass(item, bool):
            return "bool"
        if issubclass(item, enum.IntEnum):
            return "enum"
        if issubclass(item, int):
            return "int"
        if issubclass(item, str):
            return "str"
        if issubclass(item, bytes):
            return "bytes"
        if dataclasses.is_dataclass(item):
            return "message"
    return None


_PROTO_TYPES = {
    "bool": {FieldDescriptor.TYPE_BOOL}, "str": {FieldDescriptor.TYPE_STRING},
    "bytes": {FieldDescriptor.TYPE_BYTES}, "enum": {FieldDescriptor.TYPE_ENUM},
    "int": set(_INT_BOUNDS), "message": {FieldDescriptor.TYPE_MESSAGE},
    "object": {FieldDescriptor.TYPE_MESSAGE},
}


def _is_hash_name(name: str) -> bool:
    return name == "digest" or name.endswith(("_hash", "_root"))


def _field_plan(cls: type, proto_name: str, name: str, hint: Any,
                descriptor: Any) -> _Field:
    where = f"{_full_name(cls)}.{name}"
    fd = descriptor.fields_by_name.get(name)
    if fd is None:
        raise CodecError(Reason.UNMAPPED, f"{where} has no field in qenex.v1.{proto_name}")
    item, repeated, optional = _unwrap(hint)
    kind = _kind_of(item)
    if kind is None or (optional and kind != "message"):
        raise CodecError(Reason.UNMAPPED, f"{where}: type {hint!r} has no wire mapping")
    if fd.type not in _PROTO_TYPES[kind] or fd.is_repeated != repeated:
        raise CodecError(Reason.UNMAPPED, f"{where}: {hint!r} does not match proto field "
                         f"type {fd.type} (repeated={fd.is_repeated})")
    if kind == "message" and fd.message_type.name != proto_name_of(item):
        raise CodecError(Reason.UNMAPPED, f"{where}: proto field holds "
                         f"{fd.message_type.name}, not {proto_name_of(item)}")
    if kind == "object" and fd.message_type.name != "ConsensusMessage":
        raise CodecError(Reason.UNMAPPED, f"{where}: `object` maps to ConsensusMessage only")
    low, high = _INT_BOUNDS.get(fd.type, (0, 0))
    low = max(low, _SIGNED_MIN.get((proto_name, name), 0))  # domain ints are >= 0
    fixed = None
    if kind == "bytes" and not repeated and _is_hash_name(name):
        fixed = HASH_BYTES
    return _Field(name, kind, repeated, optional, item if kind in ("message", "enum") else None,
                  fd.type, low, high, fixed, (proto_name, name) in _EMPTY_HASH_ALLOWED)


@functools.cache
def _plan(cls: type) -> _Plan:
    proto_name = proto_name_of(cls)
    proto_cls = _proto_class(proto_name)
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError) as exc:
        raise CodecError(Reason.UNMAPPED, f"{_full_name(cls)}: unresolvable hints: {exc}") from exc
    fields = tuple(
        _field_plan(cls, proto_name, f.name, hints[f.name], proto_cls.DESCRIPTOR)
        for f in dataclasses.fields(cls) if (proto_name, f.name) not in _DERIVED)
    return _Plan(cls, proto_name, proto_cls, fields)


# ------------------------------------------------------------------ checks (both ways)
def _check_scalar(plan: _Plan, field: _Field, value: Any) -> None:
    where = f"{plan.proto_name}.{field.name}"
    if field.kind == "int" and not field.int_min <= value <= field.int_max:
        raise CodecError(Reason.OUT_OF_RANGE,
                         f"{where}={value} outside [{field.int_min}, {field.int_max}]")
    if (field.fixed_bytes is not None and len(value) != field.fixed_bytes
            and not (field.empty_ok and len(value) == 0)):
        raise CodecError(Reason.BAD_LENGTH,
                             f"{where} is {len(value)} bytes, expected {field.fixed_bytes}")


_PY_TYPES = {"int": int, "bool": bool, "str": str, "bytes": bytes, "enum": enum.IntEnum}


def _check_python_type(plan: _Plan, field: _Field, value: Any) -> None:
    # Sender side: a wrong Python type is our own bug, reported with class and field
    # instead of a protobuf TypeError deep inside the encoder.
    expected = _PY_TYPES[field.kind]
    ok = isinstance(value, expected) and (field.kind == "bool" or not isinstance(value, bool))
    if field.kind == "enum":
        ok = isinstance(value, field.target)
    if not ok:
        raise CodecError(Reason.UNMAPPED, f"{_full_name(plan.cls)}.{field.name}: "
                         f"{type(value).__name__} is not {field.kind}")


# ------------------------------------------------------------------ encode
def fill_proto(out: pb_message.Message, value: object) -> None:
    """Write dataclass `value` into the (empty) proto message `out` of its mapped type."""
    plan = _plan(type(value))  # type: ignore[arg-type]  # classes are hashable
    for field in plan.fields:
        _encode_field(plan, field, out, getattr(value, field.name))
    if plan.proto_name == "CommittedBlock":
        # Informational copy for other readers; our decoder ignores it (derived).
        out.block_hash = value.block.block_hash  # type: ignore[attr-defined]


def _encode_field(plan: _Plan, field: _Field, out: Any, value: Any) -> None:
    if field.kind in ("message", "object"):
        _encode_nested(plan, field, out, value)
        return
    items = value if field.repeated else (value,)
    if field.repeated and not isinstance(value, tuple):
        raise CodecError(Reason.UNMAPPED, f"{_full_name(plan.cls)}.{field.name} is not a tuple")
    for item in items:
        _check_python_type(plan, field, item)
        if field.kind in ("int", "bytes"):
            _check_scalar(plan, field, item)
    converted = [int(v) if field.kind == "enum" else v for v in items]
    if field.repeated:
        getattr(out, field.name).extend(converted)
    else:
        setattr(out, field.name, converted[0])


def _encode_nested(plan: _Plan, field: _Field, out: Any, value: Any) -> None:
    where = f"{_full_name(plan.cls)}.{field.name}"
    if field.repeated:
        if not isinstance(value, tuple):
            raise CodecError(Reason.UNMAPPED, f"{where} is not a tuple")
        container = getattr(out, field.name)
        for item in value:
            _encode_one(field, container.add(), item, where)
        return
    if value is None:
        if not field.optional:
            raise CodecError(Reason.MISSING_FIELD, f"{where} is None but not optional")
        return
    target = getattr(out, field.name)
    target.SetInParent()  # present even when every sub-field has its default
    _encode_one(field, target, value, where)


def _encode_one(field: _Field, out: Any, value: Any, where: str) -> None:
    if field.kind == "object":
        fill_consensus_message(out, value)
    elif type(value) is not field.target:
        raise CodecError(Reason.UNMAPPED, f"{where}: {type(value).__name__} is not "
                         f"{field.target.__name__}")
    else:
        fill_proto(out, value)


def fill_consensus_message(out: Any, message: object) -> None:
    """Place a top-level message in the ConsensusMessage oneof."""
    cls = type(message)
    name = proto_name_of(cls)
    family = _family_of(cls)
    inner_field: str | None
    if family is not None:
        wrapper = getattr(out, family.oneof_field)
        inner_field = _snake(cls.__qualname__)
    elif name in _SHARED_TOP:
        top, inner_field = _SHARED_TOP[name]
        wrapper = getattr(out, top)
    else:
        raise CodecError(Reason.UNMAPPED, f"{_full_name(cls)} is not a top-level message")
    if inner_field is None:
        wrapper.SetInParent()
        fill_proto(wrapper, message)
        return
    fd = wrapper.DESCRIPTOR.fields_by_name.get(inner_field)
    if fd is None or fd.message_type is None or fd.message_type.name != name:
        raise CodecError(Reason.UNMAPPED, f"{_full_name(cls)}: no oneof field "
                         f"{wrapper.DESCRIPTOR.name}.{inner_field} of type {name}")
    target = getattr(wrapper, inner_field)
    target.SetInParent()
    fill_proto(target, message)


def encode_message(message: object) -> bytes:
    """A serialised qenex.v1.ConsensusMessage (no envelope)."""
    out = consensus_pb2.ConsensusMessage()
    fill_consensus_message(out, message)
    return out.SerializeToString()


def encode_envelope(chain_id: str, sender: int, message: object, signature: bytes) -> bytes:
    """A serialised qenex.v1.ConsensusEnvelope carrying `message` signed by `sender`."""
    envelope = consensus_pb2.ConsensusEnvelope(
        protocol_version=PROTOCOL_VERSION, chain_id=chain_id, sender=sender,
        signature=signature)
    envelope.message.SetInParent()
    fill_consensus_message(envelope.message, message)
    return envelope.SerializeToString()


# ------------------------------------------------------------------ decode
def read_proto(cls: type, data: Any, depth: int = 0) -> Any:
    """Build dataclass `cls` from its parsed proto message, validating every field."""
    plan = _plan(cls)
    values = {field.name: _decode_field(plan, field, getattr(data, field.name), data,
                                             depth)
              for field in plan.fields}
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:  # the dataclass's own validation refused it
        raise CodecError(Reason.BAD_VALUE, f"{plan.proto_name}: {exc}") from exc


def _decode_field(plan: _Plan, field: _Field, raw: Any, data: Any, depth: int) -> Any:
    if field.kind in ("message", "object"):
        if field.repeated:
            return tuple(_decode_one(plan, field, item, depth) for item in raw)
        if not data.HasField(field.name):
            if field.optional:
                return None
            raise CodecError(Reason.MISSING_FIELD, f"{plan.proto_name}.{field.name} is absent")
        return _decode_one(plan, field, raw, depth)
    if field.repeated:
        return tuple(_decode_scalar(plan, field, item) for item in raw)
    return _decode_scalar(plan, field, raw)


def _decode_one(plan: _Plan, field: _Field, raw: Any, depth: int) -> Any:
    if field.kind == "object":
        return read_consensus_message(raw, depth + 1)
    return read_proto(field.target, raw, depth)


def _decode_scalar(plan: _Plan, field: _Field, raw: Any) -> Any:
    if field.kind == "enum":
        try:
            return field.target(raw)
        except ValueError:
            raise CodecError(Reason.BAD_VALUE,
                             f"{plan.proto_name}.{field.name}: unknown value {raw}") from None
    if field.kind in ("int", "bytes"):
        _check_scalar(plan, field, raw)
    return raw


def read_consensus_message(data: Any, depth: int = 0) -> object:
    """The dataclass held by a parsed ConsensusMessage oneof."""
    if depth > SIGNED_NESTING_MAX:
        # Honest messages nest signed messages 2 deep (NEW-VIEW > VIEW-CHANGE > prepared
        # PRE-PREPARE); deeper ones would also exceed canonical.DEPTH_MAX when signed.
        raise CodecError(Reason.MALFORMED, f"signed messages nested over {SIGNED_NESTING_MAX} deep")
    top = data.WhichOneof("kind")
    if top is None:
        raise CodecError(Reason.MALFORMED, "ConsensusMessage holds no message")
    family = _FAMILY_BY_FIELD.get(top)
    wrapper = getattr(data, top)
    if family is None and (top, None) in _SHARED_BY_TOP:
        return read_proto(_shared_class(_SHARED_BY_TOP[(top, None)]), wrapper, depth)
    inner = wrapper.WhichOneof("kind")
    if inner is None:
        raise CodecError(Reason.MALFORMED, f"{wrapper.DESCRIPTOR.name} holds no message")
    proto_name = wrapper.DESCRIPTOR.fields_by_name[inner].message_type.name
    cls: type | None
    if family is None:
        cls = _shared_class(_SHARED_BY_TOP[(top, inner)])
    else:
        cls = find_message_class(family, proto_name)
        if cls is None:
            raise CodecError(Reason.UNKNOWN_MESSAGE, f"no dataclass for {proto_name} "
                             f"(engine {family.module} not installed?)")
    return read_proto(cls, getattr(wrapper, inner), depth)


def decode_message(data: bytes) -> object:
    """Inverse of `encode_message`."""
    parsed = consensus_pb2.ConsensusMessage()
    _parse(parsed, data)
    return read_consensus_message(parsed)


def _parse(out: pb_message.Message, data: bytes) -> None:
    try:
        out.ParseFromString(data)
    except pb_message.DecodeError as exc:
        raise CodecError(Reason.MALFORMED, f"not a {out.DESCRIPTOR.name}: {exc}") from None


def decode_envelope(data: bytes, chain_id: str, nodes: int, *,
                    envelope_bytes_max: int = ENVELOPE_BYTES_MAX) -> Envelope:
    """Parse and validate a ConsensusEnvelope from a peer. Raises only CodecError.

    The signature is NOT checked here: the caller verifies it over
    `signing_bytes(chain_id, envelope.message)` with the sender's key.
    """
    if len(data) > envelope_bytes_max:
        raise CodecError(Reason.OVERSIZED, f"{len(data)} bytes > {envelope_bytes_max}")
    parsed = consensus_pb2.ConsensusEnvelope()
    _parse(parsed, data)
    if parsed.protocol_version != PROTOCOL_VERSION:
        raise CodecError(Reason.BAD_VERSION, f"version {parsed.protocol_version}, "
                         f"expected {PROTOCOL_VERSION}")
    if parsed.chain_id != chain_id:
        raise CodecError(Reason.WRONG_CHAIN, f"chain {parsed.chain_id[:64]!r}")
    if parsed.sender >= nodes:
        raise CodecError(Reason.UNKNOWN_SENDER, f"sender {parsed.sender} not in 0..{nodes - 1}")
    if not parsed.HasField("message"):
        raise CodecError(Reason.MISSING_FIELD, "envelope carries no message")
    message = read_consensus_message(parsed.message)
    return Envelope(parsed.sender, message, bytes(parsed.signature))
