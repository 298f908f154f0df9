"""Bounded, deduplicated pool of admitted transactions waiting to be ordered.

Pure (no clock): callers pass `now_ms`. A transaction moves pending -> proposed when a
batch is cut; if its block does not commit in time it returns to pending, so an admitted
transaction is never silently dropped. Committed ids are removed.

"In time" depends on who holds the batch. A batch *forwarded* to the leader may have been
lost with its message or its leader: after `proposal_timeout_ms` it is forwarded again
(harmless: the leader refuses what it already holds or committed), and at once when the
epoch it was forwarded in ends - a new leader has never seen it, and the old one may be
the crashed node whose failure caused the view change (a swarm run with 10 % loss and a
crashed primary left 13 % of the transactions offered after GST forwarded to the dead
primary, each waiting out one more timeout after the new view). A batch this node
*proposed* itself is still in its own pipeline: offering it again while that block may
still commit would order it twice. So it waits for the epoch (view/term and leader) to
change, or for `own_proposal_timeout_factor` times the timeout as a last resort. Limits: `txs_max` and `bytes_max`;
past them `add` refuses (back-pressure), it never grows.

Nonces. The ledger accepts only each sender's exact next nonce, and a client that
pipelines nonces n, n+1 may see them admitted in either order (gRPC threads race, or two
nodes forward them). So a transaction whose nonce leaves a gap is *held back*: it waits,
outside every batch, until the transactions before it are in the pool, then it is
released behind them. `committed_nonce` (the sender's nonce in the applied ledger, given
by the admitting caller) anchors the gap check; callers that know no nonces (opaque
transactions) pass no sender and nothing is held. At most `held_per_sender_max`
transactions wait per sender; more are refused (NONCE_GAP), never buffered. Within a
batch, one sender's transactions are put in nonce order.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MempoolLimits:
    txs_max: int = 50_000
    bytes_max: int = 64 * 1024 * 1024
    proposal_timeout_ms: int = 3_000
    held_per_sender_max: int = 64  # out-of-order nonces waiting for the gap to fill
    own_proposal_timeout_factor: int = 10


class AddResult:
    ADDED = "ADDED"
    HELD = "HELD"  # admitted, waiting for an earlier nonce of the same sender
    DUPLICATE = "DUPLICATE"
    FULL = "MEMPOOL_FULL"
    NONCE_GAP = "NONCE_GAP"  # too many held transactions for this sender
    NONCE_TOO_LOW = "NONCE_TOO_LOW"  # the sender's ledger already used this nonce


@dataclass(slots=True)
class _Sender:
    """What the pool knows of one sender while it has transactions here."""
    sender: bytes  # its own key: whatever moves its transactions records them under it
    committed_nonce: int  # highest nonce known applied
    present: dict[int, set[bytes]]  # nonce -> ids of the txs pending or proposed with it
    held: dict[int, tuple[bytes, bytes]]  # nonce -> (tx_id, tx), waiting for the gap

    def frontier(self) -> int:
        """The highest nonce that may be batched now: no gap below it."""
        nonce = self.committed_nonce
        while nonce + 1 in self.present:
            nonce += 1
        return nonce + 1


@dataclass(frozen=True, slots=True)
class Forwarded:
    """A proposed transaction handed to the leader of `epoch` rather than ordered here."""
    epoch: object


class Mempool:
    def __init__(self, limits: MempoolLimits = MempoolLimits()) -> None:
        self.limits = limits
        self._pending: OrderedDict[bytes, bytes] = OrderedDict()  # tx_id -> tx bytes
        self._order: dict[bytes, tuple[bytes, int]] = {}  # tx_id -> (sender, nonce)
        # tx_id -> (tx, proposed at ms, epoch it was proposed in or Forwarded(epoch))
        self._proposed: OrderedDict[bytes, tuple[bytes, int, object]] = OrderedDict()
        self._senders: dict[bytes, _Sender] = {}
        self._held_ids: set[bytes] = set()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._pending) + len(self._proposed) + len(self._held_ids)

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    @property
    def held_count(self) -> int:
        return len(self._held_ids)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._pending or tx_id in self._proposed or tx_id in self._held_ids

    def add(self, tx_id: bytes, tx: bytes, sender: bytes = b"", nonce: int = 0,
            committed_nonce: int | None = None) -> str:
        if tx_id in self:
            return AddResult.DUPLICATE
        if len(self) >= self.limits.txs_max or self._bytes + len(tx) > self.limits.bytes_max:
            return AddResult.FULL
        if not sender:
            self._admit(tx_id, tx)
            return AddResult.ADDED
        if committed_nonce is not None and nonce <= committed_nonce:
            # Applied already (this tx or another with its nonce): ordering it again could
            # only fail at apply. It comes back as a peer's re-forward after this node
            # restarted and forgot its recently committed ids.
            return AddResult.NONCE_TOO_LOW
        state = self._senders.get(sender)
        if state is None:
            state = self._senders[sender] = _Sender(sender, committed_nonce or 0, {}, {})
        elif committed_nonce is not None and committed_nonce > state.committed_nonce:
            state.committed_nonce = committed_nonce  # committed elsewhere: gaps may be filled
            self._release(state)
        if committed_nonce is not None and nonce > state.frontier():
            return self._hold(state, tx_id, tx, nonce)
        self._order[tx_id] = (sender, nonce)
        state.present.setdefault(nonce, set()).add(tx_id)
        self._admit(tx_id, tx)
        self._release(state)
        return AddResult.ADDED

    def _admit(self, tx_id: bytes, tx: bytes) -> None:
        self._pending[tx_id] = tx
        self._bytes += len(tx)

    def _hold(self, state: _Sender, tx_id: bytes, tx: bytes, nonce: int) -> str:
        if nonce in state.held or len(state.held) >= self.limits.held_per_sender_max:
            return AddResult.NONCE_GAP
        state.held[nonce] = (tx_id, tx)
        self._held_ids.add(tx_id)
        self._bytes += len(tx)
        return AddResult.HELD

    def _release(self, state: _Sender) -> None:
        """Move held transactions into pending, in nonce order: those whose gap has filled,
        and those whose nonce is already committed. The latter can only fail, and should:
        the committed nonce moves in three places (an admission that knows more, a block
        applied here, a committed transaction of this pool), and a held transaction it
        passed would otherwise wait forever, its client with it."""
        for stale in sorted(n for n in state.held if n <= state.committed_nonce):
            self._unhold(state, stale)
        while state.held:
            nonce = state.frontier()
            if nonce not in state.held:
                return
            self._unhold(state, nonce)

    def cut_batch(self, txs_max: int, bytes_max: int, now_ms: int,
                  epoch: object = None) -> tuple[bytes, ...]:
        """Take up to the limits from the front of pending (FIFO) and mark them proposed
        in `epoch` (see `mark_forwarded` when another node will propose them)."""
        chosen: list[tuple[bytes, bytes]] = []
        size = 0
        for tx_id, tx in list(self._pending.items()):
            if len(chosen) >= txs_max or size + len(tx) > bytes_max:
                break
            del self._pending[tx_id]
            self._proposed[tx_id] = (tx, now_ms, epoch)
            chosen.append((tx_id, tx))
            size += len(tx)
        return self._nonce_ordered(chosen)

    def _nonce_ordered(self, chosen: list[tuple[bytes, bytes]]) -> tuple[bytes, ...]:
        """Senders keep their first-seen order; each sender's txs go in nonce order."""
        first_seen: dict[bytes, int] = {}
        keyed = []
        for position, (tx_id, tx) in enumerate(chosen):
            sender, nonce = self._order.get(tx_id, (tx_id, 0))
            rank = first_seen.setdefault(sender, position)
            keyed.append((rank, nonce, position, tx))
        keyed.sort()
        return tuple(item[3] for item in keyed)

    def return_batch(self, tx_ids: list[bytes]) -> None:
        """A proposal was refused: its transactions go back to the front of pending."""
        for tx_id in reversed(tx_ids):
            entry = self._proposed.pop(tx_id, None)
            if entry is not None:
                self._pending[tx_id] = entry[0]
                self._pending.move_to_end(tx_id, last=False)

    def mark_forwarded(self, tx_ids: list[bytes], epoch: object = None) -> None:
        """These proposed transactions went to another node (the leader of `epoch`)."""
        for tx_id in tx_ids:
            entry = self._proposed.get(tx_id)
            if entry is not None:
                self._proposed[tx_id] = (entry[0], entry[1], Forwarded(epoch))

    def requeue_stale(self, now_ms: int, epoch: object = None) -> int:
        """Proposed but not committed in time (see the module note): pending again."""
        timeout = self.limits.proposal_timeout_ms
        last_resort = timeout * self.limits.own_proposal_timeout_factor
        stale = []
        for tx_id, (_, at_ms, proposed_in) in self._proposed.items():
            age = now_ms - at_ms
            if isinstance(proposed_in, Forwarded):
                if age >= timeout or proposed_in.epoch != epoch:
                    stale.append(tx_id)
            elif proposed_in is None or proposed_in != epoch:  # None: no epoch known
                if age >= timeout:
                    stale.append(tx_id)
            elif age >= last_resort:
                stale.append(tx_id)
        for tx_id in stale:
            tx = self._proposed.pop(tx_id)[0]
            self._pending[tx_id] = tx
        return len(stale)

    def remove_committed(self, tx_ids: list[bytes] | tuple[bytes, ...]) -> None:
        for tx_id in tx_ids:
            tx = self._pending.pop(tx_id, None)
            if tx is None:
                entry = self._proposed.pop(tx_id, None)
                tx = entry[0] if entry else None
            if tx is not None:
                self._bytes -= len(tx)
                self._forget(tx_id)

    def note_committed(self, nonces: tuple[tuple[bytes, int], ...]) -> int:
        """The applied block advanced these senders' nonces. Most of those transactions
        were admitted at other nodes and never entered this pool, so `remove_committed`
        alone never learns that a gap here was filled: a transaction held behind it
        waited forever, and its closed-loop client with it (measured on 7 real PBFT
        nodes: a client sends nonce n + 1 to a node one block behind the node that
        committed n, and the pools filled with held transactions nobody released).
        Held transactions whose gap is now filled are released in nonce order; one whose
        nonce a different transaction took is released too, so it is ordered and gets a
        NONCE_MISMATCH receipt - its client gets an answer, not a timeout. Returns how
        many were released."""
        released = 0
        for sender, nonce in nonces:
            state = self._senders.get(sender)
            if state is None or nonce <= state.committed_nonce:
                continue
            state.committed_nonce = nonce
            before = len(state.held)
            self._release(state)
            released += before - len(state.held)
        return released

    def _unhold(self, state: _Sender, nonce: int) -> None:
        tx_id, tx = state.held.pop(nonce)
        self._held_ids.discard(tx_id)
        self._order[tx_id] = (state.sender, nonce)
        state.present.setdefault(nonce, set()).add(tx_id)
        self._pending[tx_id] = tx

    @staticmethod
    def _drop_present(state: _Sender, nonce: int, tx_id: bytes) -> None:
        ids = state.present.get(nonce)
        if ids is not None:
            ids.discard(tx_id)
            if not ids:
                del state.present[nonce]

    def _forget(self, tx_id: bytes) -> None:
        order = self._order.pop(tx_id, None)
        if order is None:
            return
        sender, nonce = order
        state = self._senders.get(sender)
        if state is None:
            return
        self._drop_present(state, nonce, tx_id)
        state.committed_nonce = max(state.committed_nonce, nonce)
        self._release(state)
        if not state.present and not state.held:
            del self._senders[sender]  # bounded: only senders with transactions here
