"""The committed generated modules must equal what the pinned generator makes now."""
from __future__ import annotations

import pathlib
import shutil

import pytest

from proto import generate

GENERATED = pathlib.Path(generate.ROOT) / "proto" / "qenex" / "v1"


def _drift(out_root: pathlib.Path, committed: pathlib.Path) -> list[str]:
    fresh = {p.name: p.read_bytes() for p in generate.generate_into(out_root)}
    have = {p.name: p.read_bytes() for p in committed.glob("*_pb2*.py*")}
    return sorted(name for name in fresh.keys() | have.keys()
                  if fresh.get(name) != have.get(name))


def test_generated_code_matches_proto_sources(tmp_path):
    pytest.importorskip("grpc_tools")
    drifted = _drift(tmp_path, GENERATED)
    assert not drifted, f"regenerate with `python -m proto.generate`; drifted: {drifted}"


def test_drift_check_catches_an_edited_source(tmp_path, monkeypatch):
    """Prove the check can fail: edit a copy of a .proto and compare against the commit."""
    pytest.importorskip("grpc_tools")
    root = tmp_path / "tree"
    shutil.copytree(generate.ROOT / "proto", root / "proto")
    source = root / "proto" / "qenex" / "v1" / "transaction.proto"
    source.write_text(source.read_text().replace("string memo = 4;", "string memo = 4;\n"
                                                 "  uint64 tip = 5;"))
    monkeypatch.setattr(generate, "ROOT", root)
    monkeypatch.setattr(generate, "SOURCES", sorted((root / "proto/qenex/v1").glob("*.proto")))
    out = tmp_path / "out"
    out.mkdir()
    assert "transaction_pb2.py" in _drift(out, GENERATED)


def test_protos_import_each_other_relative_to_the_proto_root():
    """`protoc -I proto`, buf and grpc-js (includeDirs: [proto]) resolve these names; the
    descriptors served by reflection carry them too."""
    from proto.qenex.v1 import node_pb2

    for source in generate.SOURCES:
        for line in source.read_text().splitlines():
            if line.startswith("import "):
                name = line.split('"')[1]
                assert (generate.ROOT / "proto" / name).is_file(), (source.name, name)
    assert node_pb2.DESCRIPTOR.name == "qenex/v1/node.proto"
    assert sorted(d.name for d in node_pb2.DESCRIPTOR.dependencies) == [
        "qenex/v1/block.proto", "qenex/v1/consensus.proto", "qenex/v1/transaction.proto"]
    assert node_pb2.DESCRIPTOR.services_by_name["Node"].full_name == "qenex.v1.Node"
