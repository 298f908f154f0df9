"""`qenex testnet`: generate an N-node local cluster on loopback.

    OUT/genesis.yaml      ledger genesis: currency USD, funded client accounts
    OUT/validators.yaml   validator ids and ML-DSA-87 public keys
    OUT/nodeI/config.yaml one config per node (free loopback ports: peer, gRPC, metrics,
                          REST/WebSocket/GraphQL)
    OUT/nodeI/keys/       the node's key file (seed encrypted under scrypt + AES-GCM) and,
                          for a local test network only, the passphrase file beside it
    OUT/clients/clientK.json  client account keys (Ed25519)
    OUT/cluster.json      what the CLI prints with --json: homes, addresses, client keys
"""
from __future__ import annotations

import json
import os
import secrets
import socket
from pathlib import Path
from typing import Any

import yaml

from consensus.api import max_faulty
from crypto.keystore import FileKeyStoreConfig, generate_node_key
from crypto.schemes import Scheme
from qenex_node.client_keys import ClientKey

CURRENCY = "USD"
CLIENT_BALANCE_MINOR = 1_000_000_000  # 10,000,000.00 USD per test client
TESTNET_SCRYPT_COST_LOG2 = 14  # lighter than production (15) so start-up stays quick


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports the kernel says are free now (held open together so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _write_secret(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(data)


def _node_config(i: int, nodes: int, chain_id: str, algorithm: str, block_time_ms: int,
                 ports: dict[str, list[int]]) -> dict[str, Any]:
    fault = max_faulty(algorithm, nodes)
    return {
        "node": {"id": i, "chain_id": chain_id, "home": ".", "genesis": "../genesis.yaml",
                 "validators": "../validators.yaml"},
        "consensus": {"algorithm": algorithm, "nodes": nodes, "fault_tolerance": fault,
                      "block_time": f"{block_time_ms}ms", "finality": "immediate"},
        "network": {"listen": f"127.0.0.1:{ports['peer'][i]}",
                    "peers": {j: f"127.0.0.1:{ports['peer'][j]}"
                              for j in range(nodes) if j != i}},
        "api": {"grpc": f"127.0.0.1:{ports['grpc'][i]}",
                "metrics": f"127.0.0.1:{ports['metrics'][i]}",
                "rest": f"127.0.0.1:{ports['rest'][i]}"},
        "keystore": {"type": "file", "path": "keys/node.key",
                     "passphrase_file": "keys/passphrase"},
        "logging": {"level": "info"},
    }


def generate_testnet(out: Path, nodes: int, algorithm: str, clients: int = 4,
                     chain_id: str = "qenex-local", block_time_ms: int = 200) -> dict[str, Any]:
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; choose a new --out folder")
    out.mkdir(parents=True, exist_ok=True)
    all_ports = free_ports(4 * nodes)
    ports = {name: all_ports[k * nodes:(k + 1) * nodes]
             for k, name in enumerate(("peer", "grpc", "metrics", "rest"))}
    validators = []
    for i in range(nodes):
        home = out / f"node{i}"
        _write_secret(home / "keys" / "passphrase", secrets.token_hex(24))
        key = generate_node_key(FileKeyStoreConfig(
            path=home / "keys" / "node.key", passphrase_env=None,
            passphrase_file=home / "keys" / "passphrase",
            scrypt_cost_log2=TESTNET_SCRYPT_COST_LOG2), Scheme.ML_DSA_87)
        validators.append({"id": i, "scheme": "ML_DSA_87", "public_key": key.public_key.hex()})
        (home / "data").mkdir(parents=True, exist_ok=True)
        config = _node_config(i, nodes, chain_id, algorithm, block_time_ms, ports)
        (home / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    client_keys = [ClientKey.generate() for _ in range(clients)]
    for k, key in enumerate(client_keys):
        key.save(out / "clients" / f"client{k}.json")
    genesis = {
        "chain_id": chain_id, "genesis_time_ms": 0,
        "currencies": {CURRENCY: {"minor_units": 2,
                                  "issuers": [client_keys[0].address.hex()] if clients else []}},
        "accounts": [{"scheme": "ED25519", "public_key": key.public_key.hex(), "nonce": 0,
                      "balances": {CURRENCY: CLIENT_BALANCE_MINOR}} for key in client_keys],
    }
    (out / "genesis.yaml").write_text(yaml.safe_dump(genesis, sort_keys=False))
    (out / "validators.yaml").write_text(yaml.safe_dump({"chain_id": chain_id,
                                                         "validators": validators}))
    summary = _summary(out, nodes, algorithm, chain_id, ports, client_keys)
    (out / "cluster.json").write_text(json.dumps(summary, indent=2))
    return summary


def _summary(out: Path, nodes: int, algorithm: str, chain_id: str,
             ports: dict[str, list[int]], client_keys: list[ClientKey]) -> dict[str, Any]:
    return {
        "chain_id": chain_id, "algorithm": algorithm, "dir": str(out.resolve()),
        "nodes": [{"id": i, "home": str((out / f"node{i}").resolve()),
                   "grpc": f"127.0.0.1:{ports['grpc'][i]}",
                   "peer": f"127.0.0.1:{ports['peer'][i]}",
                   "metrics": f"127.0.0.1:{ports['metrics'][i]}",
                   "rest": f"127.0.0.1:{ports['rest'][i]}"} for i in range(nodes)],
        "clients": [{"key_file": str((out / "clients" / f"client{k}.json").resolve()),
                     "address": key.address.hex(), "scheme": key.scheme.name,
                     "balance": {CURRENCY: CLIENT_BALANCE_MINOR}}
                    for k, key in enumerate(client_keys)],
    }
