"""The node daemon: one `trio.run`, components started in order with `nursery.start`.

Start-up order: logging -> scheme self-test -> key store -> guard -> storage (+ genesis)
-> engine `Restore` -> metrics/health port -> peer mesh -> driver -> receive loop ->
ticker -> gRPC. Shutdown (SIGTERM/SIGINT) cancels the nursery; the storage write in
progress finishes first because worker-thread calls are not abandoned on cancel.
"""
from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import trio
import yaml

from consensus.api import EngineConfig, Restore, Tick, create_engine, engine_class
from consensus.types import SignedMessage, Validator, ValidatorSet
from crypto.keystore import (
    FileKeyStoreConfig,
    KeyStoreConfig,
    Pkcs11KeyStoreConfig,
    TpmKeyStoreConfig,
    load_node_key,
)
from crypto.selftest import check_schemes
from crypto.signer import ConsensusSigner, ValidatorVerifier, open_guard
from ledger.genesis import Genesis
from proto.qenex.v1 import consensus_pb2
from qenex_node.config import NodeConfig, sync_response_bytes_max
from qenex_node.core.mempool import Mempool, MempoolLimits
from qenex_node.core.replica import Replica
from qenex_node.core.sync import SyncLimits
from qenex_node.runtime.backend import NodeIdentity, RuntimeBackend
from qenex_node.runtime.driver import Driver, ProposeNow
from qenex_node.runtime.logs import configure_logging, node_logger
from qenex_node.runtime.metrics import NodeMetrics, serve_http
from qenex_node.runtime.peers import PeerLink
from qenex_node.runtime.storage import LedgerStorage, evidence_extractor
from qenex_node.transport.channel import PqChannelFactory
from qenex_node.transport.codec import fill_proto
from qenex_node.transport.envelopes import EnvelopeOutbox
from qenex_node.transport.mesh import PeerMesh

OBSERVE_INTERVAL_S = 1.0


class StartupError(RuntimeError):
    """A reason the node refuses to start: one line that says what to do."""


def keystore_config(section: dict[str, Any], home: Path) -> KeyStoreConfig:
    kind = section.get("type", "file")
    path = home / str(section.get("path", "keys/node.key"))
    if kind == "file":
        pfile = section.get("passphrase_file")
        return FileKeyStoreConfig(path=path, passphrase_env=section.get(
            "passphrase_env", "QENEX_KEY_PASSPHRASE"),
            passphrase_file=home / pfile if pfile else None,
            prompt=bool(section.get("prompt", False)))
    if kind == "tpm":
        return TpmKeyStoreConfig(path=path, tcti=str(section.get("tcti", "device:/dev/tpmrm0")),
                                 pcrs=tuple(section.get("pcrs", ())))
    return Pkcs11KeyStoreConfig(path=path, module=str(section.get(
        "module", "/usr/lib/softhsm/libsofthsm2.so")), token_label=str(section.get(
            "token_label", "qenex")), pin_env=str(section.get("pin_env", "QENEX_PKCS11_PIN")))


def load_validators(path: Path, chain_id: str, nodes: int) -> ValidatorSet:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise StartupError(f"cannot read validators file {path}: {exc}") from None
    entries = doc.get("validators") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or len(entries) != nodes:
        raise StartupError(f"{path}: expected {nodes} validators (consensus.nodes)")
    if doc.get("chain_id") != chain_id:
        raise StartupError(f"{path}: chain_id {doc.get('chain_id')!r} is not {chain_id!r}")
    try:
        return ValidatorSet(tuple(Validator(int(e["id"]), bytes.fromhex(e["public_key"]))
                                  for e in sorted(entries, key=lambda e: int(e["id"]))))
    except (KeyError, TypeError, ValueError) as exc:
        raise StartupError(f"{path}: bad validator entry ({exc})") from None


def engine_config(cfg: NodeConfig, validators: ValidatorSet, verifier: ValidatorVerifier) -> EngineConfig:
    c = cfg.consensus
    tick = c.tick_ms
    return EngineConfig(
        node_id=cfg.node_id, validators=validators, chain_id=cfg.chain_id, verifier=verifier,
        seed=int.from_bytes(os.urandom(8), "big"), fault_tolerance=c.fault_tolerance,
        tick_ms=tick, election_timeout_ticks=max(c.election_timeout_ms // tick, 2),
        heartbeat_ticks=max(c.heartbeat_ms // tick, 1),
        view_timeout_ticks=max(c.view_timeout_ms // tick, 2),
        batch_txs_max=c.batch_txs_max, batch_bytes_max=c.batch_bytes_max,
        inflight_blocks_max=c.inflight_blocks_max,
        checkpoint_interval_blocks=c.checkpoint_interval_blocks,
        timestamp_skew_max_ms=TIMESTAMP_SKEW_MAX_MS,
        **{f"{key}_ticks": max(value // tick, 1) for key, value in c.round_timeouts_ms.items()})


class NodeRuntime:
    """Owns the components and starts them in order; each gets only what it needs."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.metrics = NodeMetrics()
        self.log = node_logger(config.node_id, config.chain_id, config.consensus.algorithm)
        self._ready = False

    # ------------------------------------------------------------ start-up
    def _open(self) -> None:
        cfg = self.config
        try:
            check_schemes(("ML_DSA_87", "ED25519"))
        except Exception as exc:
            raise StartupError(f"signature schemes do not work on this machine: {exc}") from exc
        store_cfg = keystore_config(cfg.keystore, cfg.home)
        self.node_key = load_node_key(store_cfg)
        self.validators = load_validators(cfg.validators_path, cfg.chain_id, cfg.consensus.nodes)
        if self.validators.public_key(cfg.node_id) != self.node_key.public_key:
            raise StartupError(f"the key in {store_cfg.path} is not validator {cfg.node_id}'s "
                               f"key in {cfg.validators_path}")
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.guard = open_guard(cfg.data_dir / "sign-guard.log", self.node_key, store_cfg)
        self.signer = ConsensusSigner(cfg.chain_id, self.node_key, self.guard)
        self.verifier = ValidatorVerifier(cfg.chain_id, self.validators)
        genesis = Genesis.from_dict(yaml.safe_load(cfg.genesis_path.read_text()))
        self.genesis = genesis
        if genesis.chain_id != cfg.chain_id:
            raise StartupError(f"{cfg.genesis_path}: chain_id {genesis.chain_id!r} is not "
                               f"{cfg.chain_id!r}")
        self.storage = LedgerStorage.open(
            str(cfg.data_dir / "ledger"), genesis, cfg.storage_map_bytes,
            evidence_extractor(engine_class(cfg.consensus.algorithm)))
        engine_cfg = engine_config(cfg, self.validators, self.verifier)
        mempool = Mempool(MempoolLimits(txs_max=cfg.mempool_txs_max,
                                        bytes_max=cfg.mempool_bytes_max,
                                        proposal_timeout_ms=max(
                                            3 * cfg.consensus.view_timeout_ms, 3_000)))
        self.replica = Replica(engine=create_engine(cfg.consensus.algorithm, engine_cfg),
                               config=engine_cfg, mempool=mempool,
                               sync_limits=sync_limits(cfg.consensus.tick_ms))

    def _restore_input(self) -> Restore:
        store = self.storage.store
        return Restore(records=store.engine_records(), committed_height=store.height,
                       committed_hash=store.block_hash if store.height else b"",
                       state_root=store.state_root)

    def peers_connected(self) -> int:
        return len(self.peers.connected()) if hasattr(self, "peers") else 0

    def is_ready(self) -> bool:
        quorum_peers = self.config.consensus.nodes - self.config.consensus.fault_tolerance - 1
        return self._ready and self.peers_connected() >= quorum_peers

    def _build(self) -> None:
        """Wire the components from explicit collaborators (no component sees this class)."""
        cfg = self.config
        mesh = build_mesh(cfg, self.node_key, self.validators)
        self.driver = Driver(replica=self.replica, storage=self.storage, signer=self.signer,
                             outbox=EnvelopeOutbox(mesh, cfg.chain_id), metrics=self.metrics,
                             log=self.log, sync_response_bytes_max=sync_response_bytes_max(cfg))
        self.peers = PeerLink(mesh=mesh, chain_id=cfg.chain_id, nodes=cfg.consensus.nodes,
                              envelope_bytes_max=cfg.frame_bytes_max, verifier=self.verifier,
                              inputs=self.driver.send_inputs, metrics=self.metrics,
                              log=self.log)
        self.backend = RuntimeBackend(
            identity=NodeIdentity(cfg.node_id, cfg.chain_id, cfg.consensus.algorithm),
            storage=self.storage, replica=self.replica, metrics=self.metrics,
            peers_connected=self.peers_connected, is_ready=self.is_ready,
            driver_inputs=self.driver.send_inputs, forget_read=self.driver.forget_read)
        self.driver.listeners.append(self.backend.on_driver_event)

    # ------------------------------------------------------------ run
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        cfg = self.config
        await trio.to_thread.run_sync(self._open)
        self._build()
        self._stopping = trio.Event()
        self.driver.send_inputs.send_nowait(self._restore_input())
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._signals, nursery.cancel_scope)
                await nursery.start(serve_http, cfg.metrics_host, cfg.metrics_port, self.metrics,
                                    self.is_ready)
                await nursery.start(self.driver.run)
                await nursery.start(self.peers.run)
                nursery.start_soon(self._ticker)
                nursery.start_soon(self._observe)
                await nursery.start(self._grpc)
                if cfg.rest_host is not None:
                    await nursery.start(self._rest)
                self._ready = True
                self.log.info("started", height=self.storage.store.height,
                              grpc=f"{cfg.grpc_host}:{cfg.grpc_port}",
                              rest=f"{cfg.rest_host}:{cfg.rest_port}" if cfg.rest_host else "",
                              peer=f"{cfg.listen_host}:{cfg.listen_port}")
                task_status.started()
        finally:
            self._ready = False
            self.log.info("stopped", height=self.storage.store.height)
            self.guard.close()
            self.storage.close()

    async def _signals(self, scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                self.log.info("shutdown", signal=signal.Signals(signum).name)
                self._stopping.set()
                scope.cancel()
                return

    async def _ticker(self) -> None:
        c = self.config.consensus
        ticks_per_block = max(c.block_time_ms // c.tick_ms, 1)
        count = 0
        deadline = trio.current_time()
        while True:
            deadline += c.tick_ms / 1000
            await trio.sleep_until(deadline)
            count += 1
            try:
                self.driver.send_inputs.send_nowait(Tick())
                if count % ticks_per_block == 0:
                    self.driver.send_inputs.send_nowait(ProposeNow(_unix_ms()))
            except trio.WouldBlock:
                self.metrics.rejected.labels("ticker", "DRIVER_BUSY").inc()
            if trio.current_time() - deadline > 1.0:
                deadline = trio.current_time()  # we fell far behind: do not burst ticks

    async def _observe(self) -> None:
        """Gauges that nothing else updates: peers, mempool, the mesh's counters."""
        while True:
            self.metrics.peers_connected.set(self.peers_connected())
            self.metrics.mempool_txs.set(len(self.replica.mempool))
            for event, value in sorted(self.peers.mesh.counters.items()):
                self.metrics.transport.labels(event).set(value)
            await trio.sleep(OBSERVE_INTERVAL_S)

    async def _grpc(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        from qenex_node.api.server import start_grpc_server

        cfg = self.config
        handle = start_grpc_server(self.backend, trio.lowlevel.current_trio_token(),
                                   cfg.grpc_host, cfg.grpc_port,
                                   grpc_workers_max=cfg.grpc_workers_max,
                                   grpc_message_bytes_max=cfg.grpc_message_bytes_max,
                                   vote_encoder=_vote_to_pb)
        try:
            handle.set_serving(True)
            task_status.started()
            await trio.sleep_forever()
        finally:
            handle.set_serving(False)
            await trio.to_thread.run_sync(handle.stop, 1.0)


    async def _rest(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The REST/WebSocket/GraphQL gateway: hypercorn under this trio run, over the same
        backend as gRPC. Its shutdown trigger is the node's stop event; the nursery's
        cancel then ends whatever hypercorn has not closed by itself."""
        from hypercorn.config import Config as HypercornConfig
        from hypercorn.trio import serve

        from qenex_node.api.rest import RestGateway, RestLimits
        from qenex_node.api.rest_json import Money

        cfg = self.config
        app = RestGateway(self.backend, Money({c.code: c.minor_units
                                               for c in self.genesis.currencies}),
                          self.metrics.rest_rejected,
                          RestLimits(body_bytes_max=cfg.rest_body_bytes_max,
                                     ws_subscriptions_max=cfg.rest_ws_subscriptions_max),
                          self.metrics.rest_subscribers)
        server = HypercornConfig()
        server.bind = [f"{cfg.rest_host}:{cfg.rest_port}"]
        server.accesslog = None
        server.errorlog = logging.getLogger("hypercorn.error")  # through the node's logging
        server.graceful_timeout = 1.0
        server.websocket_max_message_size = 64 * 1024
        await serve(app, server, shutdown_trigger=self._stopping.wait, mode="asgi",
                    task_status=task_status)


def _vote_to_pb(vote: SignedMessage) -> consensus_pb2.SignedConsensusMessage:
    """Certificates served to clients carry each vote in full, so a client holding the
    validator set can check the signatures itself."""
    out = consensus_pb2.SignedConsensusMessage()
    fill_proto(out, vote)
    return out


def _unix_ms() -> int:
    """Block timestamps are wall-clock Unix ms: the proposer's clock, as in the header."""
    return time.time_ns() // 1_000_000


# PBFT backups refuse headers stamped further ahead of their tick clock than this. A
# loaded daemon drops ticks (the driver's input queue is full), so its tick clock lags
# wall time; at the 2 s engine default real 7-process clusters refused honest primaries
# and changed view over and over after restarts. Still bounded: header times never move
# the clock, so a primary cannot ratchet it.
TIMESTAMP_SKEW_MAX_MS = 30_000
STATUS_INTERVAL_MS = 1_000  # peers tell each other their height this often
SYNC_REQUEST_TIMEOUT_MS = 2_000
RECONNECT_BACKOFF_MAX_MS = 2_000


def sync_limits(tick_ms: int) -> SyncLimits:
    return SyncLimits(status_interval_ticks=max(STATUS_INTERVAL_MS // tick_ms, 1),
                      request_timeout_ticks=max(SYNC_REQUEST_TIMEOUT_MS // tick_ms, 1))


def build_mesh(cfg: NodeConfig, node_key: Any, validators: ValidatorSet) -> PeerMesh:
    """The TCP mesh over the PQ channel, keyed by the validator set's ML-DSA-87 keys."""
    peer_keys = {v.node_id: v.public_key for v in validators.validators
                 if v.node_id != cfg.node_id}
    factory = PqChannelFactory(node_key, peer_keys, cfg.chain_id, cfg.frame_bytes_max)
    return PeerMesh(cfg.node_id, cfg.listen_host, cfg.listen_port,
                    {p.node_id: (p.host, p.port) for p in cfg.peers}, factory,
                    factory.wire_frame_bytes_max, cfg.send_queue_max, RECONNECT_BACKOFF_MAX_MS)


def run_node(config: NodeConfig) -> None:
    configure_logging(config.log_level)
    trio.run(NodeRuntime(config).run)
