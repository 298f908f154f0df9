"""Regenerate the committed protobuf/gRPC modules: `python -m proto.generate`.

The drift test (tests/unit/test_proto_drift.py) calls `generate_into` on a temporary
folder and compares byte for byte, so the committed modules always match the sources.

The include root is `proto/` (`protoc -I proto`), as buf and foreign clients (grpc-js,
Go, Java) expect: the sources import each other as "qenex/v1/<file>.proto" and the
descriptors name their files so. protoc then writes Python imports `from qenex.v1 import
...`, but this project's top-level package is `proto`, so those imports (and the module
names the classes report) are rewritten to `proto.qenex.v1`.
"""
from __future__ import annotations

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "proto" / "qenex" / "v1").glob("*.proto"))

# `from qenex.v1 import x_pb2` in .py, .pyi and _grpc.py files.
_IMPORT = re.compile(rb"^from qenex\.v1 import ", re.MULTILINE)
# The module name handed to the protobuf builder, which sets the classes' __module__.
_MODULE_NAME = re.compile(rb"\(DESCRIPTOR, 'qenex\.v1\.")


def generate_into(out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Compile every .proto under proto/qenex/v1 into `out_dir`/proto/qenex/v1, with
    imports that resolve under the `proto` package; return the written files."""
    import grpc_tools
    from grpc_tools import protoc

    include_root = ROOT / "proto"
    package_dir = out_dir / "proto"
    package_dir.mkdir(parents=True, exist_ok=True)
    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{include_root}", f"-I{well_known}", f"--python_out={package_dir}",
            f"--pyi_out={package_dir}", f"--grpc_python_out={package_dir}"]
    args += [str(src.relative_to(include_root)) for src in SOURCES]
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"protoc failed with exit status {code}")
    written = sorted((package_dir / "qenex" / "v1").glob("*_pb2*.py*"))
    for path in written:
        path.write_bytes(_under_proto_package(path.read_bytes()))
    return written


def _under_proto_package(code: bytes) -> bytes:
    """Point protoc's `qenex.v1` imports and module names at `proto.qenex.v1`."""
    code = _IMPORT.sub(b"from proto.qenex.v1 import ", code)
    return _MODULE_NAME.sub(b"(DESCRIPTOR, 'proto.qenex.v1.", code)


def main() -> int:
    written = generate_into(ROOT)
    for path in written:
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
