"""Pure packages must not reach for I/O: ARCHITECTURE.md §1 and rule 2.

`consensus/`, `ledger/` (outside `ledger/storage/`) and `qenex_node/core/` may not import
trio, grpc, lmdb, socket, time, os or the global RNG. Building a seeded `random.Random` is
allowed; calling the module-level functions (`random.random()`, `from random import
choice`) is not, because they share one hidden global state.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PURE_DIRS = ("consensus", "ledger", "qenex_node/core")
EXCLUDED = ("ledger/storage",)
FORBIDDEN = {"trio", "grpc", "lmdb", "socket", "time", "os", "asyncio", "threading",
             "subprocess", "datetime"}
RANDOM_ALLOWED = {"Random"}


def violations_in(source: str, filename: str = "<src>") -> list[str]:
    found: list[str] = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in FORBIDDEN:
                    found.append(f"{filename}:{node.lineno} imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            top = node.module.split(".")[0]
            if top in FORBIDDEN:
                found.append(f"{filename}:{node.lineno} imports from {node.module}")
            if top == "random":
                bad = [a.name for a in node.names if a.name not in RANDOM_ALLOWED]
                if bad:
                    found.append(f"{filename}:{node.lineno} imports random.{bad}")
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id == "random" and node.attr not in RANDOM_ALLOWED):
            found.append(f"{filename}:{node.lineno} uses global random.{node.attr}")
    return found


def pure_files() -> list[pathlib.Path]:
    files = []
    for folder in PURE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if not any(rel.startswith(ex + "/") for ex in EXCLUDED):
                files.append(path)
    return files


def test_pure_packages_do_not_import_io():
    assert pure_files(), "no pure files found: the walk itself is broken"
    found = []
    for path in pure_files():
        found += violations_in(path.read_text(), path.relative_to(ROOT).as_posix())
    assert not found, "pure code reaches for I/O:\n" + "\n".join(found)


@pytest.mark.parametrize("snippet", [
    "import trio", "import grpc.aio", "from lmdb import open", "import socket",
    "import time", "from os import path", "import os.path", "from random import choice",
    "import random\nx = random.random()", "import random\nrandom.seed(1)",
])
def test_checker_catches_each_forbidden_use(snippet):
    assert violations_in(snippet), snippet


@pytest.mark.parametrize("snippet", [
    "import random\nrng = random.Random(5)", "from random import Random",
    "from consensus import types", "import hashlib",
])
def test_checker_allows_seeded_rng_and_pure_modules(snippet):
    assert not violations_in(snippet), snippet
