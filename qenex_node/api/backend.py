"""What the gRPC service needs from the running node: the seam between grpcio's threads
and the trio runtime.

The runtime implements `NodeBackend` with trio code; the service (running on grpcio's
bounded thread pool) calls it through `trio.from_thread.run(...)` with the runtime's trio
token. Every method answers with domain values; the service maps them to protobuf and
gRPC status codes. Nothing here blocks the trio loop: reads go to the storage thread.

Refusals that are not a transaction verdict (node not ready, a watcher that fell behind)
are raised as `BackendRefusal(reason, detail)`; the service maps `reason` to a gRPC status
(see qenex_node/api/status_codes.py). Lookups that find nothing return None (NOT_FOUND).
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from consensus.types import BlockHeader, Certificate
from qenex_node.core.app import TxOutcome
from qenex_node.core.sync import CommittedBlock


class BackendRefusal(Exception):
    """A refusal with a stable reason name, e.g. "NOT_READY", "WATCH_LAGGED"."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


LINEARIZABLE = "linearizable"  # reflects every commit before the read began (default)
LOCAL = "local"  # this node's latest applied state, possibly behind
CONSISTENCY_LEVELS = (LINEARIZABLE, LOCAL)


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How fresh a read must be (proto ReadOptions). The backend waits up to `timeout_ms`
    for the height the read needs, then refuses with BEHIND (or TIMEOUT when no read point
    could be learned) - never answers with older state in silence."""
    consistency: str = LINEARIZABLE
    min_height: int = 0  # read-your-writes: serve only from state at >= this height
    timeout_ms: int = 0  # 0 = the backend's default


DEFAULT_READ = ReadOptions()


@dataclass(frozen=True, slots=True)
class StateProofView:
    """An account (non-)membership proof against the state root after `height`.

    `proof` is the ledger's own `ledger.state_tree.AccountProof`; `leaf` is the account's
    canonical bytes (b"" for absence). `header`/`certificate`: a final header whose
    state_root is `state_root` (None while no committed header carries it yet).
    """
    height: int
    state_root: bytes
    leaf: bytes
    proof: object  # ledger.state_tree.AccountProof
    scheme: str  # ledger.state_tree.PROOF_SCHEME
    header: BlockHeader | None = None
    certificate: Certificate | None = None


@dataclass(frozen=True, slots=True)
class AccountRead:
    """An account as of the state after `height` (root `state_root`), the state the read
    was served from; `account` None when absent; `proof` only when asked."""
    account: object | None  # ledger.account.Account
    proof: StateProofView | None
    height: int
    state_root: bytes


@dataclass(frozen=True, slots=True)
class SubmitResult:
    tx_id: bytes
    status: str  # "ACCEPTED" | "COMMITTED" | "REJECTED" | "DUPLICATE"
    reason: str = ""  # stable reason name when REJECTED (e.g. "BAD_SIGNATURE", "MEMPOOL_FULL")
    detail: str = ""
    height: int = 0  # when COMMITTED
    outcome: TxOutcome | None = None  # when COMMITTED


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    tx: bytes  # the SignedTransaction envelope bytes
    height: int
    outcome: TxOutcome
    header: BlockHeader
    certificate: Certificate
    proof_index: int
    proof_count: int
    proof_path: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class NodeStatusView:
    node_id: int
    chain_id: str
    algorithm: str
    height: int
    state_root: bytes
    block_hash: bytes
    view: int
    leader: int | None
    role: str
    peers_connected: int
    mempool_txs: int
    version: str
    ready: bool


@dataclass(frozen=True, slots=True)
class EvidenceView:
    """One committed piece of equivocation evidence (qenex_node/api/evidence.py)."""
    height: int  # the committed block that carries it
    index: int  # its place among that block's evidence
    validator: int  # the accused
    evidence_height: int  # where the two votes were cast
    round: int
    vote_type: str  # "PREVOTE" | "PRECOMMIT"
    block_a: bytes  # the smaller block id (b"" = nil)
    block_b: bytes
    signature_a: bytes
    signature_b: bytes
    evidence: bytes  # canonical bytes of the piece


@dataclass(frozen=True, slots=True)
class EvidencePageView:
    items: tuple[EvidenceView, ...]
    next_height: int  # from_height of the next page; 0 when done


@dataclass(frozen=True, slots=True)
class NodeEvent:
    kind: str  # "block_committed" | "transaction_committed" | "leader_changed"
    height: int = 0
    block_hash: bytes = b""
    state_root: bytes = b""
    tx_count: int = 0
    timestamp_ms: int = 0
    tx_id: bytes = b""
    outcome: TxOutcome | None = None
    view: int = 0
    leader: int | None = None


class NodeBackend(Protocol):
    async def submit(self, tx: bytes, wait_for_commit: bool, timeout_ms: int) -> SubmitResult:
        """Admit one transaction; with `wait_for_commit`, answer once it is committed
        (or with REJECTED reason "TIMEOUT" if `timeout_ms` passes first; the transaction
        stays admitted)."""
        ...

    async def get_transaction(self, tx_id: bytes, read: ReadOptions = DEFAULT_READ
                              ) -> tuple[TransactionRecord | None, int]:
        """(record or None, the applied height the lookup was served at)."""
        ...

    async def get_account(self, address: bytes, prove: bool,
                          read: ReadOptions = DEFAULT_READ) -> AccountRead:
        """The account (or its absence, proved when `prove`) at a state as fresh as `read`
        asks for."""
        ...

    async def get_block(self, height: int | None, block_hash: bytes | None,
                        read: ReadOptions = DEFAULT_READ) -> tuple[CommittedBlock | None, int]:
        """(block or None, the applied height the lookup was served at)."""
        ...

    async def get_evidence(self, from_height: int, to_height: int, validator: int | None,
                           limit: int) -> EvidencePageView:
        """Committed evidence at heights [from_height, to_height] (0 = the tip), against
        `validator` or anyone; `limit` (already checked by the service) bounds a page."""
        ...

    async def status(self) -> NodeStatusView: ...

    async def transfer_leadership(self, to: int) -> int | None:
        """Start handing leadership to `to`; the leader known now. BackendRefusal with
        the engine's reason (NOT_LEADER, MALFORMED, NOT_SUPPORTED) when it cannot."""
        ...

    def watch(self, from_height: int) -> AsyncIterator[NodeEvent]:
        """Committed blocks from `from_height` (0 = only new), then live events. Each
        subscriber has a bounded queue; a subscriber that falls too far behind is ended
        with an error rather than letting the queue grow (raise BackendRefusal("WATCH_LAGGED")).

        The service consumes it from one trio task and closes it (aclose) when the client
        goes away, so cancel scopes inside the generator are safe."""
        ...
