"""Canonical bytes for domain objects: what we hash, sign and persist.

Why not protobuf: protobuf serialisation is not canonical (field order, unknown fields and
map order may vary between implementations), so two honest nodes could hash the same block
differently. This encoding has exactly one byte string per value, so `digest(x) == digest(y)`
iff `x == y`, and a signature over `encode(vote)` can be checked by anyone who rebuilds the
vote from a certificate.

Grammar (every length and integer is an unsigned LEB128 varint; integers are zigzag first):
    None  -> 'N'            bool -> 'T' | 'F'          int  -> 'I' zigzag(varint)
    bytes -> 'B' len data   str  -> 'S' len utf8       tuple/list -> 'L' count items
    enum  -> 'E' name value (registered IntEnum)
    dataclass -> 'D' name count fields-in-declaration-order (registered frozen dataclass)
Names are explicit versioned wire names (`register("pbft.prepare.v1")`), never module paths.
Floats, dicts and sets are refused: they have no single canonical form here.
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import re
from collections.abc import Callable
from typing import Any, TypeVar

DEPTH_MAX = 32
ITEMS_MAX = 1_000_000

_TYPES: dict[str, type] = {}
_NAMES: dict[type, str] = {}

T = TypeVar("T", bound=type)


class CanonicalError(ValueError):
    """Bytes that are not a canonical encoding, or a value that has none."""


WIRE_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.v[1-9][0-9]*")


def register(wire_name: str) -> Callable[[T], T]:
    """Class decorator: make a frozen dataclass or IntEnum encodable under `wire_name`.

    The wire name is what enters hashed, signed and stored bytes, so it must never follow
    a Python module or class name (moving a file would fork the chain and orphan every
    stored record). It is lower-case, dotted, and ends in a version: "pbft.prepare.v1".
    A changed field list is a new version.
    """
    if not isinstance(wire_name, str) or not WIRE_NAME_PATTERN.fullmatch(wire_name):
        raise CanonicalError(f"wire name {wire_name!r} is not like 'family.kind.v1'")

    def decorate(cls: T) -> T:
        if wire_name in _TYPES and _TYPES[wire_name] is not cls:
            raise CanonicalError(f"two classes registered as {wire_name}")
        if cls in _NAMES and _NAMES[cls] != wire_name:
            raise CanonicalError(f"{cls.__qualname__} registered as {_NAMES[cls]} already")
        if dataclasses.is_dataclass(cls) and not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            raise CanonicalError(f"{wire_name} must be a frozen dataclass")
        _TYPES[wire_name] = cls
        _NAMES[cls] = wire_name
        return cls

    return decorate


def wire_name(cls: type) -> str:
    """The registered wire name of `cls` (CanonicalError if it has none)."""
    name = _NAMES.get(cls)
    if name is None:
        raise CanonicalError(f"{cls.__qualname__} has no wire name (canonical.register)")
    return name


def registered_types() -> dict[str, type]:
    """wire name -> class, for every type imported so far (codec discovery, golden tests)."""
    return dict(_TYPES)


def _varint(value: int, out: bytearray) -> None:
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _zigzag(value: int) -> int:
    return value * 2 if value >= 0 else -value * 2 - 1


def _unzigzag(value: int) -> int:
    return value // 2 if value % 2 == 0 else -(value + 1) // 2


def _encode_into(value: Any, out: bytearray, depth: int) -> None:
    if depth > DEPTH_MAX:
        raise CanonicalError("nesting too deep")
    if value is None:
        out += b"N"
    elif value is True:
        out += b"T"
    elif value is False:
        out += b"F"
    elif isinstance(value, enum.IntEnum):
        _encode_enum(value, out)
    elif isinstance(value, int):
        out += b"I"
        _varint(_zigzag(value), out)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        out += b"B"
        _varint(len(data), out)
        out += data
    elif isinstance(value, str):
        data = value.encode("utf-8")
        out += b"S"
        _varint(len(data), out)
        out += data
    elif isinstance(value, (tuple, list)):
        out += b"L"
        _varint(len(value), out)
        for item in value:
            _encode_into(item, out, depth + 1)
    elif dataclasses.is_dataclass(value) and type(value) in _NAMES:
        _encode_dataclass(value, out, depth)
    else:
        raise CanonicalError(f"no canonical form for {type(value).__name__}")


def _encode_enum(value: enum.IntEnum, out: bytearray) -> None:
    name = _NAMES.get(type(value))
    if name is None:
        raise CanonicalError(f"enum {type(value).__name__} is not registered")
    out += b"E"
    _encode_into(name, out, 0)
    _varint(_zigzag(int(value)), out)


def _encode_dataclass(value: Any, out: bytearray, depth: int) -> None:
    cls = type(value)
    if cls in _CACHED:
        hit = _encoded.get(id(value))
        if hit is not None and hit[0] is value:
            out += hit[1]
            return
        start = len(out)
        _encode_fields(value, out, depth)
        _remember(value, bytes(out[start:]))
        return
    _encode_fields(value, out, depth)


def _encode_fields(value: Any, out: bytearray, depth: int) -> None:
    fields = _FIELDS.get(type(value))
    if fields is None:
        fields = _FIELDS[type(value)] = tuple(f.name for f in dataclasses.fields(value))
    out += b"D"
    _encode_into(_NAMES[type(value)], out, depth + 1)
    _varint(len(fields), out)
    for name in fields:
        _encode_into(getattr(value, name), out, depth + 1)


# Immutable values that travel inside many messages (a block inside its proposal, its
# votes' certificates, sync answers) are encoded once: the cache holds the object itself,
# so an id is never mistaken for a newer object's. Bounded; oldest entries leave first.
ENCODE_CACHE_MAX = 4_096
_CACHED: set[type] = set()
_encoded: dict[int, tuple[Any, bytes]] = {}
_FIELDS: dict[type, tuple[str, ...]] = {}


def _remember(value: Any, data: bytes) -> None:
    if len(_encoded) >= ENCODE_CACHE_MAX:
        del _encoded[next(iter(_encoded))]
    _encoded[id(value)] = (value, data)


def cache_encoding(cls: type) -> type:
    """Class decorator (below `register`): encodings of this frozen type are reused."""
    _CACHED.add(cls)
    return cls


def encode(value: Any) -> bytes:
    """The one canonical byte string of `value`."""
    out = bytearray()
    _encode_into(value, out, 0)
    return bytes(out)


def digest(value: Any) -> bytes:
    """SHA-256 of the canonical bytes: the identity of a block, vote or record."""
    return hashlib.sha256(encode(value)).digest()


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, count: int) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise CanonicalError("truncated")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def varint(self) -> int:
        shift = 0
        result = 0
        while True:
            byte = self.take(1)[0]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if byte == 0 and shift:
                    raise CanonicalError("non-minimal varint")
                return result
            shift += 7
            if shift > 640:
                raise CanonicalError("varint too long")


def _decode_from(reader: _Reader, depth: int) -> Any:
    if depth > DEPTH_MAX:
        raise CanonicalError("nesting too deep")
    tag = reader.take(1)
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise CanonicalError(f"unknown tag {tag!r}")
    return decoder(reader, depth)


def _decode_count(reader: _Reader) -> int:
    count = reader.varint()
    if count > ITEMS_MAX:
        raise CanonicalError("too many items")
    return count


def _decode_str(reader: _Reader) -> str:
    try:
        return reader.take(_decode_count(reader)).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CanonicalError("invalid utf-8") from exc


def _decode_name(reader: _Reader, depth: int) -> type:
    name = _decode_from(reader, depth + 1)
    if not isinstance(name, str) or name not in _TYPES:
        raise CanonicalError(f"unknown type {name!r}")
    return _TYPES[name]


def _decode_enum(reader: _Reader, depth: int) -> Any:
    cls = _decode_name(reader, depth)
    try:
        return cls(_unzigzag(reader.varint()))
    except ValueError as exc:
        raise CanonicalError(f"bad value for {cls.__name__}") from exc


def _decode_dataclass(reader: _Reader, depth: int) -> Any:
    cls = _decode_name(reader, depth)
    count = _decode_count(reader)
    fields = dataclasses.fields(cls)
    if count != len(fields):
        raise CanonicalError(f"{cls.__name__}: expected {len(fields)} fields, got {count}")
    values = [_decode_from(reader, depth + 1) for _ in range(count)]
    return cls(*values)


_DECODERS: dict[bytes, Callable[[_Reader, int], Any]] = {
    b"N": lambda r, d: None,
    b"T": lambda r, d: True,
    b"F": lambda r, d: False,
    b"I": lambda r, d: _unzigzag(r.varint()),
    b"B": lambda r, d: r.take(_decode_count(r)),
    b"S": lambda r, d: _decode_str(r),
    b"L": lambda r, d: tuple(_decode_from(r, d + 1) for _ in range(_decode_count(r))),
    b"E": _decode_enum,
    b"D": _decode_dataclass,
}


def decode(data: bytes) -> Any:
    """Inverse of `encode`; refuses trailing bytes and anything not produced by `encode`."""
    reader = _Reader(bytes(data))
    value = _decode_from(reader, 0)
    if reader.pos != len(reader.data):
        raise CanonicalError("trailing bytes")
    return value
