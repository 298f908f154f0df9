"""Regenerate the committed protobuf/gRPC modules: `python -m proto.generate`.

The drift test (tests/unit/test_proto_drift.py) calls `generate_into` on a temporary
folder and compares byte for byte, so the committed modules always match the sources.
"""
from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "proto" / "qenex" / "v1").glob("*.proto"))


def generate_into(out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Compile every .proto under proto/qenex/v1 into `out_dir`; return written files."""
    import grpc_tools
    from grpc_tools import protoc

    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{ROOT}", f"-I{include}", f"--python_out={out_dir}",
            f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}"]
    args += [str(src.relative_to(ROOT)) for src in SOURCES]
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"protoc failed with exit status {code}")
    return sorted((out_dir / "proto" / "qenex" / "v1").glob("*_pb2*.py*"))


def main() -> int:
    written = generate_into(ROOT)
    for path in written:
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
