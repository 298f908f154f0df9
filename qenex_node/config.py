"""Node configuration: one YAML file per node, validated at start-up.

Every error names the key and the problem (`consensus.block_time: expected a duration
like 500ms, got 'soon'`), so an operator fixes it in one go. The seed's cluster shape is
accepted exactly as written:

    consensus: {algorithm: PBFT, nodes: 7, fault_tolerance: 2, block_time: 500ms,
                finality: immediate}

Durations are strings with a unit (`250ms`, `2s`, `1m`) or integers in milliseconds;
sizes are integers in bytes. Paths are relative to the config file's folder.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CONFIG_BYTES_MAX = 1024 * 1024
_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, None: 1}
# What one consensus message may add to a block: a certificate of up to n signed votes
# (ML-DSA-87: 4,627 B signature + ~300 B vote) and the envelope around it.
SIGNED_VOTE_BYTES_MAX = 5_000
ENVELOPE_OVERHEAD_BYTES = 64 * 1024


class ConfigError(ValueError):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ConsensusSettings:
    algorithm: str = "pbft"
    nodes: int = 7
    fault_tolerance: int = 2
    block_time_ms: int = 500
    finality: str = "immediate"
    tick_ms: int = 10
    view_timeout_ms: int = 2_000
    election_timeout_ms: int = 1_000
    heartbeat_ms: int = 100
    batch_txs_max: int = 2_000
    batch_bytes_max: int = 4 * 1024 * 1024
    inflight_blocks_max: int = 8
    checkpoint_interval_blocks: int = 16
    # Tendermint's round timeouts (CometBFT names), ms; absent keys keep engine defaults.
    round_timeouts_ms: dict[str, int] = field(default_factory=dict)


ROUND_TIMEOUT_KEYS = ("timeout_propose", "timeout_propose_delta", "timeout_prevote",
                      "timeout_prevote_delta", "timeout_precommit", "timeout_precommit_delta",
                      "timeout_commit")


@dataclass(frozen=True, slots=True)
class PeerSettings:
    node_id: int
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class NodeConfig:
    path: Path  # the YAML file this came from
    node_id: int
    chain_id: str
    home: Path
    genesis_path: Path
    validators_path: Path
    consensus: ConsensusSettings
    listen_host: str
    listen_port: int
    peers: tuple[PeerSettings, ...]
    grpc_host: str
    grpc_port: int
    metrics_host: str
    metrics_port: int
    keystore: dict[str, Any]  # handed to crypto's key store config builder
    mempool_txs_max: int = 100_000
    mempool_bytes_max: int = 256 * 1024 * 1024
    frame_bytes_max: int = 8 * 1024 * 1024
    send_queue_max: int = 1_024
    grpc_workers_max: int = 128  # each wait_for_commit call holds one while it waits
    grpc_message_bytes_max: int = 4 * 1024 * 1024
    rest_host: str | None = None  # the REST/WebSocket/GraphQL gateway; None = not served
    rest_port: int = 0
    rest_body_bytes_max: int = 64 * 1024
    rest_ws_subscriptions_max: int = 64
    storage_map_bytes: int = 1 << 30
    log_level: str = "info"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.home / "data"


def parse_duration_ms(value: Any, key: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(key, f"expected a duration like 500ms, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(key, "must not be negative")
        return value
    match = _DURATION.match(str(value)) if isinstance(value, str) else None
    if not match:
        raise ConfigError(key, f"expected a duration like 500ms, 2s or 1m, got {value!r}")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def _int(section: dict[str, Any], name: str, prefix: str, default: int | None = None,
         low: int = 0, high: int = 2**63 - 1) -> int:
    key = f"{prefix}.{name}"
    value = section.get(name, default)
    if value is None:
        raise ConfigError(key, "is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"expected an integer, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(key, f"must be between {low} and {high}, got {value}")
    return value


def _section(doc: dict[str, Any], name: str, required: bool = True) -> dict[str, Any]:
    value = doc.get(name)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(name, "is required and must be a mapping" if value is None
                          else f"must be a mapping, got {type(value).__name__}")
    return value


def _check_keys(section: dict[str, Any], allowed: set[str], prefix: str) -> None:
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}", f"unknown key (allowed: "
                          f"{', '.join(sorted(allowed))})")


def parse_address(value: Any, key: str) -> tuple[str, int]:
    if not isinstance(value, str) or value.count(":") != 1:
        raise ConfigError(key, f"expected HOST:PORT, got {value!r}")
    host, port_text = value.rsplit(":", 1)
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535 or not host:
        raise ConfigError(key, f"expected HOST:PORT with a port 0..65535, got {value!r}")
    return host, int(port_text)


_CONSENSUS_KEYS = {"algorithm", "nodes", "fault_tolerance", "block_time", "finality", "tick",
                   "view_timeout", "election_timeout", "heartbeat", "batch_txs_max",
                   "batch_bytes_max", "inflight_blocks_max", "checkpoint_interval_blocks",
                   *ROUND_TIMEOUT_KEYS}


def parse_consensus(section: dict[str, Any]) -> ConsensusSettings:
    from consensus.api import engine_names, max_faulty

    _check_keys(section, _CONSENSUS_KEYS, "consensus")
    algorithm = str(section.get("algorithm", "pbft")).lower()
    if algorithm not in engine_names():
        raise ConfigError("consensus.algorithm", f"unknown algorithm {algorithm!r}; this build "
                          f"has: {', '.join(engine_names())}")
    nodes = _int(section, "nodes", "consensus", 7, low=1, high=256)
    limit = max_faulty(algorithm, nodes)
    f = _int(section, "fault_tolerance", "consensus", limit, low=0)
    if f > limit:
        raise ConfigError("consensus.fault_tolerance", f"{algorithm} with {nodes} nodes "
                          f"tolerates at most {limit} faulty nodes, got {f}")
    finality = str(section.get("finality", "immediate")).lower()
    if finality != "immediate":
        raise ConfigError("consensus.finality", "only 'immediate' is supported: every engine "
                          "here commits blocks with a certificate, never probabilistically")
    ms = {name: parse_duration_ms(section[name], f"consensus.{name}")
          for name in ("block_time", "tick", "view_timeout", "election_timeout", "heartbeat")
          if name in section}
    tick_ms = ms.get("tick", 10)
    if tick_ms < 1:
        raise ConfigError("consensus.tick", "must be at least 1ms")
    return ConsensusSettings(
        algorithm=algorithm, nodes=nodes, fault_tolerance=f,
        block_time_ms=max(ms.get("block_time", 500), 1), finality=finality, tick_ms=tick_ms,
        view_timeout_ms=ms.get("view_timeout", 2_000),
        election_timeout_ms=ms.get("election_timeout", 1_000),
        heartbeat_ms=ms.get("heartbeat", 100),
        batch_txs_max=_int(section, "batch_txs_max", "consensus", 2_000, low=1),
        batch_bytes_max=_int(section, "batch_bytes_max", "consensus", 4 << 20, low=1024),
        inflight_blocks_max=_int(section, "inflight_blocks_max", "consensus", 8, low=1),
        checkpoint_interval_blocks=_int(section, "checkpoint_interval_blocks", "consensus", 16,
                                        low=1),
        round_timeouts_ms={key: parse_duration_ms(section[key], f"consensus.{key}")
                           for key in ROUND_TIMEOUT_KEYS if key in section})


def _parse_peers(value: Any, nodes: int, self_id: int) -> tuple[PeerSettings, ...]:
    if not isinstance(value, dict):
        raise ConfigError("network.peers", "must map validator id -> HOST:PORT")
    peers = []
    for raw_id, address in sorted(value.items(), key=lambda kv: str(kv[0])):
        key = f"network.peers.{raw_id}"
        try:
            node_id = int(raw_id)
        except (TypeError, ValueError):
            raise ConfigError(key, "peer ids must be integers") from None
        if not 0 <= node_id < nodes or node_id == self_id:
            raise ConfigError(key, f"peer id must be in 0..{nodes - 1} and not this node")
        host, port = parse_address(address, key)
        peers.append(PeerSettings(node_id, host, port))
    return tuple(sorted(peers, key=lambda p: p.node_id))


def parse_config(doc: Any, path: Path) -> NodeConfig:
    if not isinstance(doc, dict):
        raise ConfigError("(top level)", "the config must be a YAML mapping")
    _check_keys(doc, {"node", "consensus", "network", "api", "keystore", "mempool", "storage",
                      "logging"}, "(top level)")
    node = _section(doc, "node")
    _check_keys(node, {"id", "chain_id", "home", "genesis", "validators"}, "node")
    consensus = parse_consensus(_section(doc, "consensus"))
    node_id = _int(node, "id", "node", None, low=0, high=consensus.nodes - 1)
    chain_id = node.get("chain_id")
    if not isinstance(chain_id, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", chain_id):
        raise ConfigError("node.chain_id", "required: 1-64 letters, digits, '.', '_' or '-'")
    base = path.parent
    home = (base / str(node.get("home", "."))).resolve()
    genesis = (base / str(node.get("genesis", "genesis.yaml"))).resolve()
    validators = (base / str(node.get("validators", "validators.yaml"))).resolve()
    network = _section(doc, "network")
    _check_keys(network, {"listen", "peers", "frame_bytes_max", "send_queue_max"}, "network")
    listen_host, listen_port = parse_address(network.get("listen"), "network.listen")
    peers = _parse_peers(network.get("peers", {}), consensus.nodes, node_id)
    if len(peers) != consensus.nodes - 1:
        raise ConfigError("network.peers", f"expected {consensus.nodes - 1} peers for "
                          f"consensus.nodes={consensus.nodes}, got {len(peers)}")
    api = _section(doc, "api")
    _check_keys(api, {"grpc", "metrics", "grpc_workers_max", "grpc_message_bytes_max", "rest",
                      "rest_body_bytes_max", "rest_ws_subscriptions_max"}, "api")
    grpc_host, grpc_port = parse_address(api.get("grpc"), "api.grpc")
    metrics_host, metrics_port = parse_address(api.get("metrics"), "api.metrics")
    # Optional so configs written before the gateway existed still start (gRPC only).
    rest_host, rest_port = (parse_address(api["rest"], "api.rest") if api.get("rest") is not None
                            else (None, 0))
    for name, taken in (("api.grpc", (grpc_host, grpc_port)),
                        ("api.metrics", (metrics_host, metrics_port))):
        if rest_port and (rest_host, rest_port) == taken:
            raise ConfigError("api.rest", f"{rest_host}:{rest_port} is already {name}; give "
                              "the REST gateway its own port")
    keystore = _section(doc, "keystore")
    if keystore.get("type", "file") not in {"file", "tpm", "pkcs11"}:
        raise ConfigError("keystore.type", "must be one of file, tpm, pkcs11")
    mempool = _section(doc, "mempool", required=False)
    _check_keys(mempool, {"txs_max", "bytes_max"}, "mempool")
    storage = _section(doc, "storage", required=False)
    _check_keys(storage, {"map_bytes"}, "storage")
    logging = _section(doc, "logging", required=False)
    _check_keys(logging, {"level"}, "logging")
    level = str(logging.get("level", "info")).lower()
    if level not in {"debug", "info", "warning", "error"}:
        raise ConfigError("logging.level", "must be debug, info, warning or error")
    config = NodeConfig(
        path=path, node_id=node_id, chain_id=chain_id, home=home, genesis_path=genesis, validators_path=validators,
        consensus=consensus, listen_host=listen_host, listen_port=listen_port, peers=peers,
        grpc_host=grpc_host, grpc_port=grpc_port, metrics_host=metrics_host,
        metrics_port=metrics_port, keystore=dict(keystore),
        mempool_txs_max=_int(mempool, "txs_max", "mempool", 100_000, low=1),
        mempool_bytes_max=_int(mempool, "bytes_max", "mempool", 256 << 20, low=1024),
        frame_bytes_max=_int(network, "frame_bytes_max", "network", 8 << 20, low=64 << 10),
        send_queue_max=_int(network, "send_queue_max", "network", 1_024, low=1),
        grpc_workers_max=_int(api, "grpc_workers_max", "api", 128, low=1, high=1024),
        grpc_message_bytes_max=_int(api, "grpc_message_bytes_max", "api", 4 << 20, low=1024),
        rest_host=rest_host, rest_port=rest_port,
        rest_body_bytes_max=_int(api, "rest_body_bytes_max", "api", 64 << 10, low=32 << 10,
                                 high=16 << 20),
        rest_ws_subscriptions_max=_int(api, "rest_ws_subscriptions_max", "api", 64, low=1,
                                       high=4096),
        storage_map_bytes=_int(storage, "map_bytes", "storage", 1 << 30, low=1 << 20),
        log_level=level)
    check_limits_fit(config)
    return config


def block_message_bytes_max(config: NodeConfig) -> int:
    """The largest message that carries a full block: the block, a certificate of every
    validator's vote, and the envelope (a PRE-PREPARE, a proposal, a sync answer's block)."""
    c = config.consensus
    return c.batch_bytes_max + c.nodes * SIGNED_VOTE_BYTES_MAX + ENVELOPE_OVERHEAD_BYTES


def sync_response_bytes_max(config: NodeConfig) -> int:
    """Budget of one sync answer: what fits a frame (answers are split by size)."""
    return config.frame_bytes_max - ENVELOPE_OVERHEAD_BYTES


def check_limits_fit(config: NodeConfig) -> None:
    """Limits that must fit each other, or the node would accept what it cannot pass on."""
    c = config.consensus
    needed = block_message_bytes_max(config)
    if needed > config.frame_bytes_max:
        raise ConfigError("network.frame_bytes_max", f"{config.frame_bytes_max} B cannot carry "
                          f"one full block: consensus.batch_bytes_max {c.batch_bytes_max} B + "
                          f"a certificate of {c.nodes} votes + envelope needs {needed} B")
    if config.mempool_bytes_max < c.batch_bytes_max:
        raise ConfigError("mempool.bytes_max", f"{config.mempool_bytes_max} B is smaller than "
                          f"one batch (consensus.batch_bytes_max {c.batch_bytes_max} B)")
    if config.mempool_txs_max < c.batch_txs_max:
        raise ConfigError("mempool.txs_max", f"{config.mempool_txs_max} is smaller than one "
                          f"batch (consensus.batch_txs_max {c.batch_txs_max})")
    from ledger.tx import TX_BYTES_MAX

    if config.grpc_message_bytes_max < TX_BYTES_MAX:
        raise ConfigError("api.grpc_message_bytes_max", f"{config.grpc_message_bytes_max} B "
                          f"cannot carry one transaction ({TX_BYTES_MAX} B)")


def load_config(path: str | Path) -> NodeConfig:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the config file ({exc.strerror})") from None
    if len(raw) > CONFIG_BYTES_MAX:
        raise ConfigError(str(path), f"larger than {CONFIG_BYTES_MAX} bytes")
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"not valid YAML: {exc}".splitlines()[0]) from None
    return parse_config(doc, path.resolve())
