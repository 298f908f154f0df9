"""Canonical encoding: one byte string per value, and nothing else decodes."""
from __future__ import annotations

import enum
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus import canonical
from consensus.canonical import CanonicalError


@canonical.register("test.sample.v1")
@dataclass(frozen=True, slots=True)
class Sample:
    height: int
    data: bytes
    name: str
    items: tuple[int, ...]
    inner: object = None


@canonical.register("test.colour.v1")
class Colour(enum.IntEnum):
    RED = 1
    BLUE = 2


values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.binary(max_size=40)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5).map(tuple), max_leaves=20)


@given(values)
def test_round_trip_of_primitives_and_tuples(value):
    assert canonical.decode(canonical.encode(value)) == value


@given(st.integers(-(2**70), 2**70), st.binary(max_size=50), st.text(max_size=10))
def test_dataclass_round_trip_and_digest_identity(height, data, name):
    sample = Sample(height, data, name, (1, 2, 3), Sample(0, b"", "", ()))
    encoded = canonical.encode(sample)
    assert canonical.decode(encoded) == sample
    assert canonical.digest(sample) == canonical.digest(canonical.decode(encoded))


def test_enum_round_trip_keeps_type():
    decoded = canonical.decode(canonical.encode((Colour.BLUE, 2)))
    assert decoded == (Colour.BLUE, 2) and isinstance(decoded[0], Colour)
    assert canonical.encode(Colour.BLUE) != canonical.encode(2)


def test_distinct_values_have_distinct_bytes():
    assert canonical.encode(b"1") != canonical.encode("1") != canonical.encode(1)
    assert canonical.encode((1, (2,))) != canonical.encode(((1,), 2))


@pytest.mark.parametrize("value", [1.5, {"a": 1}, {1, 2}, object()])
def test_values_without_canonical_form_are_refused(value):
    with pytest.raises(CanonicalError):
        canonical.encode(value)


@pytest.mark.parametrize("data, why", [
    (canonical.encode(5) + b"\x00", "trailing bytes"),
    (b"B\x05ab", "truncated"),
    (b"I\x80\x00", "non-minimal varint"),
    (b"Z", "unknown tag"),
    (b"D" + canonical.encode("no.such.Type") + b"\x00", "unknown type"),
    (b"S\x02\xff\xfe", "invalid utf-8"),
])
def test_malformed_bytes_are_refused_with_a_reason(data, why):
    with pytest.raises(CanonicalError, match=why):
        canonical.decode(data)


def test_wrong_field_count_is_refused():
    good = canonical.encode(Sample(1, b"", "", ()))
    name = canonical.encode("test.sample.v1")
    bad = b"D" + name + b"\x02" + good[len(name) + 2:]
    with pytest.raises(CanonicalError):
        canonical.decode(bad)


def test_deep_nesting_is_refused():
    value: object = ()
    for _ in range(canonical.DEPTH_MAX + 2):
        value = (value,)
    with pytest.raises(CanonicalError, match="too deep"):
        canonical.encode(value)


def test_mutable_dataclass_cannot_be_registered():
    @dataclass
    class Mutable:
        x: int

    with pytest.raises(CanonicalError, match="frozen"):
        canonical.register("test.mutable.v1")(Mutable)
