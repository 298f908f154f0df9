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


# ---------------------------------------------------------------- import direction
# Which first-party packages each layer may import (ARCHITECTURE.md §2: nothing flows
# backwards; the engine never calls the ledger, the ledger never calls the network).
FIRST_PARTY = ("consensus", "crypto", "ledger", "proto", "qenex_node", "simulations")
ALLOWED = {
    "proto": {"proto"},
    "consensus": {"consensus"},
    "crypto": {"crypto", "consensus"},
    "ledger": {"ledger", "consensus", "crypto", "proto"},
    "qenex_node.core": {"qenex_node.core", "consensus", "ledger", "crypto"},
    "qenex_node": {"qenex_node", "consensus", "crypto", "ledger", "proto"},
    "simulations": {"simulations", "consensus", "crypto", "ledger", "qenex_node.core"},
}


def module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def first_party_imports(source: str, module: str) -> set[str]:
    """Every first-party module `source` imports, anywhere (TYPE_CHECKING blocks too:
    a type-only cycle is still two modules that cannot be understood apart)."""
    found: set[str] = set()
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] in FIRST_PARTY)
    return found


def layer_of(module: str) -> str:
    return "qenex_node.core" if module.startswith("qenex_node.core") else module.split(".")[0]


ENTRY_POINTS = {"qenex_node.cli": {"simulations"}}  # the `qenex` command fronts everything


def allowed(importer: str, imported: str) -> bool:
    extra = ENTRY_POINTS.get(importer, set())
    if any(imported == p or imported.startswith(p + ".") for p in extra):
        return True
    return any(imported == p or imported.startswith(p + ".") for p in ALLOWED[layer_of(importer)])


def import_graph() -> dict[str, set[str]]:
    modules = {}
    for top in FIRST_PARTY:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "_pb2" not in path.name:
                modules[module_name(path)] = path
    graph = {}
    for name, path in modules.items():
        targets = first_party_imports(path.read_text(), name)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def direction_violations(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} imports {b}" for a, targets in graph.items() for b in targets
                  if not allowed(a, b))


def cycles(graph: dict[str, set[str]], within: str) -> list[list[str]]:
    """Import cycles among modules under `within` (a package's own __init__ excluded:
    packages re-export their modules, which is not a cycle between components)."""
    nodes = {n for n in graph if n.startswith(within + ".") and n.count(".") > within.count(".")}
    nodes = {n for n in nodes if not any(n == p for p in (within,))}
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in nodes or nxt in (within,):
                continue
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(nodes):
        if node not in state:
            visit(node)
    return found


def test_imports_flow_one_way():
    graph = import_graph()
    assert "ledger.ledger" in graph and graph["qenex_node.core.replica"], "graph is empty"
    assert not direction_violations(graph), "\n".join(direction_violations(graph))


@pytest.mark.parametrize("package", ["qenex_node", "simulations", "ledger"])
def test_no_import_cycles_between_modules(package):
    found = cycles(import_graph(), package)
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_direction_checker_catches_a_backward_import():
    graph = {"ledger.ledger": {"qenex_node.core.app"}, "consensus.api": {"ledger.tx"},
             "simulations.node": {"qenex_node.runtime.driver"},
             "qenex_node.core.replica": {"qenex_node.runtime.node"}}
    assert len(direction_violations(graph)) == 4


def test_cycle_checker_catches_a_type_only_circle():
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from qenex_node.runtime.node import NodeRuntime\n"
    imported = first_party_imports(source, "qenex_node.runtime.backend")
    graph = {"qenex_node.runtime.backend": {i for i in imported if i == "qenex_node.runtime.node"},
             "qenex_node.runtime.node": {"qenex_node.runtime.backend"}}
    assert cycles(graph, "qenex_node")
