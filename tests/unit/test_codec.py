"""Codec: every wire dataclass round-trips exactly; garbage only ever raises CodecError."""
from __future__ import annotations

import dataclasses
import importlib
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus import canonical
from consensus.types import (
    GENESIS_HASH,
    Block,
    BlockHeader,
    Certificate,
    SignedMessage,
    make_block,
    signing_bytes,
)
from proto.qenex.v1 import consensus_pb2
from qenex_node.core.reads import ReadIndexAnswer, ReadIndexRequest
from qenex_node.core.sync import CommittedBlock, SyncRequest, SyncResponse, TransactionBatch
from qenex_node.transport import codec
from qenex_node.transport.codec import CodecError, Reason

CHAIN = "qenex-test"
NODES = 7


def _import_engines() -> None:
    for name in ("consensus.pbft.messages", "consensus.raft.messages",
                 "consensus.hotstuff.messages", "consensus.tendermint.messages"):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            pass  # engine not written yet: its messages are simply not covered


_import_engines()


def _engine_messages() -> list[type]:
    """Every top-level engine message whose dataclass exists, found via the proto oneofs."""
    found = []
    for family in codec._FAMILIES:
        wrapper = consensus_pb2.ConsensusMessage.DESCRIPTOR.fields_by_name[
            family.oneof_field].message_type
        for fd in wrapper.oneofs_by_name["kind"].fields:
            cls = codec.find_message_class(family, fd.message_type.name)
            if cls is not None:
                found.append(cls)
    return found


ENGINE_MESSAGES = _engine_messages()
SHARED_TOP = [SyncRequest, SyncResponse, TransactionBatch, ReadIndexRequest, ReadIndexAnswer]
LEAF_MESSAGES = [c for c in ENGINE_MESSAGES + SHARED_TOP
                 if not any(f.kind == "object" for f in codec._plan(c).fields)]


def _holds_signed(cls: type, seen: frozenset[type] = frozenset()) -> bool:
    """Whether a value of `cls` can hold a signed message at any depth."""
    for f in codec._plan(cls).fields:
        if f.kind == "object":
            return True
        if f.kind == "message" and f.target not in seen \
                and _holds_signed(f.target, seen | {cls}):
            return True
    return False


# Deeper down only messages that sign nothing: a leaf such as DuplicateVoteEvidence
# holds signed votes again, and drawing those without end made NEW-VIEWs nested deeper
# than any honest message (and than the codec's SIGNED_NESTING_MAX) - a generator bug.
FLAT_MESSAGES = [c for c in LEAF_MESSAGES if not _holds_signed(c)]


# ------------------------------------------------------------------ strategies from plans
def _scalar(field: codec._Field) -> st.SearchStrategy:
    if field.kind == "int":
        # Mostly small values, sometimes the proto bounds (the interesting edges).
        return st.one_of(st.integers(max(field.int_min, 0), 1000),
                         st.sampled_from([field.int_min, field.int_max]))
    if field.kind == "bool":
        return st.booleans()
    if field.kind == "str":
        return st.text(max_size=12)
    if field.kind == "enum":
        return st.sampled_from(list(field.target))
    if field.fixed_bytes is not None:
        return st.binary(min_size=field.fixed_bytes, max_size=field.fixed_bytes)
    return st.binary(max_size=24)


def _field(field: codec._Field, depth: int) -> st.SearchStrategy:
    if field.kind == "object":
        leaves = LEAF_MESSAGES if depth < 1 else FLAT_MESSAGES
        item = st.sampled_from(leaves).flatmap(lambda c: instances(c, depth + 1))
    elif field.kind == "message":
        item = instances(field.target, depth + 1)
    else:
        item = _scalar(field)
    if field.repeated:
        return st.lists(item, max_size=2 if depth < 2 else 0).map(tuple)
    if field.optional:
        return st.none() | item
    return item


def instances(cls: type, depth: int = 0) -> st.SearchStrategy:
    plan = codec._plan(cls)
    return st.fixed_dictionaries(
        {f.name: _field(f, depth) for f in plan.fields}).map(lambda kw: cls(**kw))


ALL_TOP = ENGINE_MESSAGES + SHARED_TOP


def test_engines_found() -> None:
    # PBFT and Raft exist in this repo; this fails loudly if discovery silently breaks.
    names = {c.__qualname__ for c in ENGINE_MESSAGES}
    assert {"PrePrepare", "NewView"} <= names or not _has("consensus.pbft")
    assert {"AppendEntries", "InstallSnapshotResponse"} <= names or not _has("consensus.raft")


def _has(module: str) -> bool:
    try:
        importlib.import_module(module)
        return True
    except ModuleNotFoundError:
        return False


@pytest.mark.parametrize("cls", ALL_TOP, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(cls: type, data: st.DataObject) -> None:
    message = data.draw(instances(cls))
    signature = data.draw(st.binary(max_size=8))
    sender = data.draw(st.integers(0, NODES - 1))
    wire = codec.encode_envelope(CHAIN, sender, message, signature)
    envelope = codec.decode_envelope(wire, CHAIN, NODES)
    assert envelope == codec.Envelope(sender, message, signature)
    assert type(envelope.message) is cls
    # What the receiver verifies is exactly what the sender signed.
    assert signing_bytes(CHAIN, envelope.message) == signing_bytes(CHAIN, message)


@pytest.mark.parametrize("cls", [Block, BlockHeader, Certificate, SignedMessage, CommittedBlock])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_shared_types_round_trip(cls: type, data: st.DataObject) -> None:
    value = data.draw(instances(cls))
    out = codec._proto_class(codec.proto_name_of(cls))()
    codec.fill_proto(out, value)
    parsed = type(out).FromString(out.SerializeToString())
    assert codec.read_proto(cls, parsed) == value
    assert canonical.encode(codec.read_proto(cls, parsed)) == canonical.encode(value)


def test_block_hash_recomputed_not_trusted() -> None:
    block = make_block(CHAIN, 1, GENESIS_HASH, (b"tx",), 0, 1)
    out = consensus_pb2.CommittedBlock()
    cert = Certificate("pbft.commit", 1, block.block_hash, ())
    codec.fill_proto(out, CommittedBlock(block, cert, GENESIS_HASH))
    assert out.block_hash == block.block_hash
    out.block_hash = b"\x01" * 32  # a lying peer
    assert codec.read_proto(CommittedBlock, out).block.block_hash == block.block_hash


# ------------------------------------------------------------------ refusals
def _prepare_envelope() -> bytes:
    prepare = codec.find_message_class(codec._FAMILIES[0], "PbftPrepare")
    if prepare is None:
        pytest.skip("PBFT messages not present")
    return codec.encode_envelope(CHAIN, 1, prepare(3, 4, b"\x07" * 32, 1), b"sig")


def _reason(data: bytes, **kwargs: typing.Any) -> str:
    with pytest.raises(CodecError) as info:
        codec.decode_envelope(data, kwargs.pop("chain", CHAIN), kwargs.pop("nodes", NODES),
                              **kwargs)
    return info.value.reason


def test_envelope_header_checks() -> None:
    wire = _prepare_envelope()
    assert _reason(wire, chain="other") == Reason.WRONG_CHAIN
    assert _reason(wire, nodes=1) == Reason.UNKNOWN_SENDER
    assert _reason(wire, envelope_bytes_max=len(wire) - 1) == Reason.OVERSIZED
    parsed = consensus_pb2.ConsensusEnvelope.FromString(wire)
    parsed.protocol_version = 2
    assert _reason(parsed.SerializeToString()) == Reason.BAD_VERSION
    parsed.protocol_version = 1
    parsed.ClearField("message")
    assert _reason(parsed.SerializeToString()) == Reason.MISSING_FIELD
    parsed.message.pbft.SetInParent()  # a wrapper with no message inside
    assert _reason(parsed.SerializeToString()) == Reason.MALFORMED


def test_bad_hash_length_and_missing_block() -> None:
    parsed = consensus_pb2.ConsensusEnvelope.FromString(_prepare_envelope())
    parsed.message.pbft.prepare.digest = b"\x07" * 31
    assert _reason(parsed.SerializeToString()) == Reason.BAD_LENGTH
    parsed.message.pbft.pre_prepare.view = 1  # PrePrepare without its (required) block
    parsed.message.pbft.pre_prepare.digest = b"\x07" * 32
    assert _reason(parsed.SerializeToString()) == Reason.MISSING_FIELD


def test_unknown_engine_message() -> None:
    missing = [f for f in codec._FAMILIES if not _has(f.module)]
    if not missing:
        pytest.skip("every engine is installed")
    parsed = consensus_pb2.ConsensusEnvelope.FromString(_prepare_envelope())
    if missing[0].oneof_field == "hotstuff":
        parsed.message.hotstuff.vote.view = 1
    else:
        parsed.message.tendermint.vote.height = 1
    assert _reason(parsed.SerializeToString()) == Reason.UNKNOWN_MESSAGE


def test_encode_refuses_out_of_range_and_wrong_types() -> None:
    prepare = codec.find_message_class(codec._FAMILIES[0], "PbftPrepare")
    if prepare is None:
        pytest.skip("PBFT messages not present")
    for bad, reason in [(prepare(-1, 0, b"\0" * 32, 0), Reason.OUT_OF_RANGE),
                        (prepare(0, 0, b"\0" * 32, 2**32), Reason.OUT_OF_RANGE),
                        (prepare(0, 0, b"\0" * 5, 0), Reason.BAD_LENGTH),
                        (prepare(0, 0, "str", 0), Reason.UNMAPPED)]:
        with pytest.raises(CodecError) as info:
            codec.encode_envelope(CHAIN, 0, bad, b"")
        assert info.value.reason == reason


def test_schema_mismatch_names_class_and_field() -> None:
    @dataclasses.dataclass(frozen=True)
    class Prepare:
        view: int
        colour: str

    Prepare.__module__, Prepare.__qualname__ = "consensus.pbft.drifted", "Prepare"
    with pytest.raises(CodecError) as info:
        codec.encode_envelope(CHAIN, 0, Prepare(1, "red"), b"")
    assert info.value.reason == Reason.UNMAPPED
    assert "consensus.pbft.drifted" in info.value.detail and "colour" in info.value.detail

    @dataclasses.dataclass(frozen=True)
    class Gossip:
        view: int

    Gossip.__module__, Gossip.__qualname__ = "consensus.raft.drifted", "Gossip"
    with pytest.raises(CodecError, match="RaftGossip"):
        codec.encode_envelope(CHAIN, 0, Gossip(1), b"")


def test_not_a_top_level_message() -> None:
    block = make_block(CHAIN, 1, GENESIS_HASH, (), 0, 1)
    with pytest.raises(CodecError) as info:
        codec.encode_envelope(CHAIN, 0, block, b"")
    assert info.value.reason == Reason.UNMAPPED


# ------------------------------------------------------------------ fuzz
@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_only_raise_codec_error(data: bytes) -> None:
    try:
        codec.decode_envelope(data, CHAIN, NODES)
    except CodecError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_envelopes_only_raise_codec_error(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from(ALL_TOP))
    wire = bytearray(codec.encode_envelope(CHAIN, 1, data.draw(instances(cls)), b"s"))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(wire) - 1))
        wire[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire)))
    try:
        codec.decode_envelope(bytes(wire[:cut]), CHAIN, NODES)
    except CodecError:
        pass


def test_deeply_nested_signed_messages_are_refused() -> None:
    prepare = codec.find_message_class(codec._FAMILIES[0], "PbftPrepare")
    new_view = codec.find_message_class(codec._FAMILIES[0], "PbftNewView")
    if prepare is None or new_view is None:
        pytest.skip("PBFT messages not present")
    message: object = prepare(1, 1, b"\0" * 32, 1)
    for _ in range(codec.SIGNED_NESTING_MAX):
        message = new_view(1, (SignedMessage(1, message, b"s"),), ())
    wire = codec.encode_envelope(CHAIN, 1, message, b"s")
    assert codec.decode_envelope(wire, CHAIN, NODES).message == message  # at the limit
    assert signing_bytes(CHAIN, message)  # and still signable (canonical depth)
    too_deep = new_view(1, (SignedMessage(1, message, b"s"),), ())
    assert _reason(codec.encode_envelope(CHAIN, 1, too_deep, b"s")) == Reason.MALFORMED
