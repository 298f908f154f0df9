"""Builders for evidence-index tests: real Tendermint DuplicateVoteEvidence, signed with the
simulator's deterministic signer, carried in blocks the way a proposer includes it."""
from __future__ import annotations

import threading

import trio

from consensus.tendermint import TendermintEngine
from consensus.tendermint.evidence import evidence_entry, make_evidence
from consensus.tendermint.messages import DuplicateVoteEvidence, Vote, VoteStep
from consensus.types import Block, SignedMessage
from crypto.simulated import SimulatedSigner
from ledger.ledger import Ledger
from qenex_node.api.backend import NodeBackend
from qenex_node.api.devnode import START_TIMEOUT_S
from qenex_node.api.server import GrpcServerHandle, start_grpc_server
from tests.unit.ledger_helpers import CHAIN, next_block

SEED = 11


def piece(validator: int, height: int, round_: int = 0,
          step: VoteStep = VoteStep.PRECOMMIT) -> DuplicateVoteEvidence:
    """`validator` signed two different blocks at (height, round_, step)."""
    signer = SimulatedSigner(SEED, validator, CHAIN)
    votes = [Vote(height, round_, step, bytes([tag]) * 32, validator) for tag in (0xB0, 0xA0)]
    return make_evidence(*(SignedMessage(validator, v, signer.sign(v)) for v in votes))


def block_with(ledger: Ledger, pieces: list[DuplicateVoteEvidence],
               txs: tuple[bytes, ...] = ()) -> Block:
    """The next block of `ledger`, carrying `txs` then the pieces as tagged entries."""
    return next_block(ledger, list(txs) + [evidence_entry(p) for p in pieces])


evidence_in_block = TendermintEngine.evidence_in_block


class ServedBackend:
    """Any NodeBackend behind the real gRPC server, on its own trio loop in a thread (what
    DevNode does for the in-memory backend), so clients call it as they call a node."""

    def __init__(self, backend: NodeBackend) -> None:
        self.backend = backend
        self._started = threading.Event()
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)
        self._scope: trio.CancelScope | None = None
        self._handle: GrpcServerHandle | None = None
        self.token: trio.lowlevel.TrioToken | None = None

    async def _main(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:
            self._scope = scope
            self._started.set()
            await trio.sleep_forever()

    @property
    def target(self) -> str:
        assert self._handle is not None, "not started"
        return f"127.0.0.1:{self._handle.port}"

    def __enter__(self) -> ServedBackend:  # noqa: PYI034
        self._thread.start()
        assert self._started.wait(START_TIMEOUT_S), "trio loop did not start"
        assert self.token is not None
        self._handle = start_grpc_server(self.backend, self.token, "127.0.0.1", 0,
                                         grpc_workers_max=4)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.stop(0.2)
        if self._scope is not None:
            trio.from_thread.run_sync(self._scope.cancel, trio_token=self.token)
        self._thread.join(START_TIMEOUT_S)
