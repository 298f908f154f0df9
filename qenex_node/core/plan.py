"""The effect plan: what a driver must do, in which order, for one step of the replica.

A `Plan` is produced by `qenex_node.core.replica.Replica` and carried out by a driver
(the trio runtime or the simulator) with its own I/O, always in this order
(ARCHITECTURE.md §1):

  1. write    - `persist` (engine records) and `blocks` (apply to the ledger and store,
                with their certificates) in ONE atomic, synced storage write;
  2. send     - sign every `sends` item (through the double-sign guard) and send it;
                answer every `serve` request from storage, signed;
  3. done     - hand the write results and the signatures back: `Replica.done(...)`
                cleans the mempool and queues the feedback inputs (`Applied`, `Synced`,
                the node's own signed copies of its broadcasts);
  4. reads    - hand `reads` (serve each once the ledger has applied its index) and
                `read_failures` to the clients that asked;
  5. next     - only then take the next input (`Replica.next_plan()` first: local
                feedback always runs before anything new from outside).

Work that needs no I/O but is slow (certificate checks of a sync answer, admission of
forwarded transactions) is named in `check_sync` and `admit` so a driver can run it off
its event loop, then feed the outcome back through the replica.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from consensus.api import Commit, Note, Persist, ReadReady, Rejected
from consensus.types import NodeId
from ledger.receipts import AppliedBlock
from qenex_node.core.reads import ReadFailure
from qenex_node.core.sync import CommittedBlock, SyncRequest, SyncResponse


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to sign and send. `to=None` is every other validator. `loopback` feeds
    the node's own signed copy back to its engine (engine broadcasts, sends to itself)."""
    to: NodeId | None
    message: object
    loopback: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    persist: tuple[Persist, ...] = ()
    blocks: tuple[Commit, ...] = ()  # in height order, each extending the last
    synced: bool = False  # blocks came from catch-up: feed `Synced`, not `Applied`
    sends: tuple[Outbound, ...] = ()
    serve: tuple[SyncRequest, ...] = ()  # answer from storage: sync_response(...)
    check_sync: tuple[SyncResponse, ...] = ()  # verify, then Replica.on_synced_blocks
    admit: tuple[tuple[NodeId, tuple[bytes, ...]], ...] = ()  # forwarded batches,
    # checked in order then `Replica.admit`ted one by one
    notes: tuple[Note | Rejected, ...] = ()
    # Client reads: serve each once the ledger has applied its index (after this plan's
    # write), or answer the failure. Under the driver's own request ids.
    reads: tuple[ReadReady, ...] = ()
    read_failures: tuple[ReadFailure, ...] = ()

    def needs_write(self) -> bool:
        return bool(self.persist or self.blocks)


EMPTY_PLAN = Plan()


class Storage(Protocol):
    """What both drivers' storage does for step 1 of a plan."""

    def write_step(self, persist: Sequence[Persist],
                   blocks: Sequence[tuple[object, object]]) -> list[AppliedBlock]:
        """Apply `blocks` (block, certificate) to the ledger and write them with `persist`
        in one synced transaction; one AppliedBlock per block."""
        ...

    def committed_range(self, from_height: int, count: int) -> list[CommittedBlock]:
        """Committed blocks with certificates, from `from_height`, at most `count`."""
        ...
