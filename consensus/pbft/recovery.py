"""Restart: rebuild a replica from its durable records (Castro & Liskov, TOCS 2002 §4.3,
§5.3 on what a replica must keep across a reboot).

Theory of operation
-------------------
The safety of PBFT rests on each correct replica never sending two different messages
for one (view, sequence) and never forgetting what it told others. The records written
before each send (state.py) are enough for that:

* the view record says which view the replica is in, and whether it had left it;
* its accepted pre-prepares for the current view stop it from preparing another digest
  at the same (v, n); an own pre-prepare not yet signed is sent again, same bytes;
* its prepared certificates go into any later VIEW-CHANGE, so a quorum that relied on
  its COMMIT still finds the batch in the next view;
* its VIEW-CHANGE / NEW-VIEW are re-sent unchanged while that view change is open;
* the stable checkpoint restores the water marks.
Committed blocks live in the ledger, written atomically with the records; `Restore`
reports its height, and a replica behind its own stable checkpoint asks for the rest.
"""
from __future__ import annotations

from consensus.api import EffectsBuilder, Restore, Send
from consensus.pbft.checkpoint import request_catch_up
from consensus.pbft.header import remember_root
from consensus.pbft.messages import NewView, PreparedCertificate, PrePrepare, ViewChange
from consensus.pbft.state import (
    KEY_NEW_VIEW,
    KEY_STABLE,
    KEY_VIEW,
    KEY_VIEW_CHANGE,
    PREFIX_PRE_PREPARE,
    PREFIX_PREPARED,
    NewViewPlan,
    Replica,
    Slot,
    StableCheckpoint,
    ViewRecord,
)
from consensus.types import EMPTY_ROOT, GENESIS_HASH, SignedMessage


def on_restore(r: Replica, fx: EffectsBuilder, event: Restore) -> None:
    records = dict(event.records)
    view = records.get(KEY_VIEW)
    if isinstance(view, ViewRecord):
        r.view, r.view_changing = view.view, view.view_changing
        r.failed_view_changes = view.failed_view_changes
    stable = records.get(KEY_STABLE)
    if isinstance(stable, StableCheckpoint):
        r.stable = stable
    r.committed_height = event.committed_height
    r.committed_hash = event.committed_hash or GENESIS_HASH
    r.committed_hashes = {event.committed_height: r.committed_hash}
    r.applied_height = event.committed_height
    r.applied_root = event.state_root or EMPTY_ROOT
    remember_root(r, r.applied_height, r.applied_root)
    restore_log(r, fx, records)
    restore_view_change(r, fx, records)
    r.assigned_sequence = max([r.committed_height, r.low_water_mark, *r.own_unsigned,
                               *(n for n, s in r.slots.items() if s.pre_prepare)])
    if r.low_water_mark > r.committed_height:
        request_catch_up(r, fx, r.low_water_mark, tuple(s.sender for s in r.stable.proof))


def restore_log(r: Replica, fx: EffectsBuilder, records: dict[str, object]) -> None:
    for key in sorted(records):
        value = records[key]
        if key.startswith(PREFIX_PREPARED) and isinstance(value, PreparedCertificate):
            r.prepared_certs[value.message.sequence] = value
            remember_block(r, value.message)
        elif key.startswith(PREFIX_PRE_PREPARE) and isinstance(value, SignedMessage):
            pp = value.message
            if isinstance(pp, PrePrepare):
                remember_block(r, pp)
                if pp.view == r.view and not r.view_changing:
                    r.slots.setdefault(pp.sequence, Slot()).pre_prepare = value
        elif key.startswith(PREFIX_PRE_PREPARE) and isinstance(value, PrePrepare) \
                and value.view == r.view and not r.view_changing:
            # Persisted, perhaps never signed: send the very same bytes again.
            r.own_unsigned[value.sequence] = value
            remember_block(r, value)
            fx.send.append(Send(None, value))
    for sequence, cert in r.prepared_certs.items():
        slot = r.slots.get(sequence)
        if slot is not None and slot.message == cert.message and not r.view_changing:
            # Its COMMIT was sent before the crash: the slot stays prepared, not re-sent.
            slot.prepared = True
            slot.prepares = {s.sender: s for s in cert.prepares}


def remember_block(r: Replica, pp: PrePrepare) -> None:
    if pp.sequence > r.committed_height:
        r.blocks.setdefault(pp.sequence, {})[pp.digest] = pp.block
        r.last_timestamp_ms = max(r.last_timestamp_ms, pp.block.header.timestamp_ms)


def restore_view_change(r: Replica, fx: EffectsBuilder, records: dict[str, object]) -> None:
    change = records.get(KEY_VIEW_CHANGE)
    if isinstance(change, ViewChange) and change.new_view == r.view:
        r.my_view_change = change
        if r.view_changing:
            fx.send.append(Send(None, change))
    built = records.get(KEY_NEW_VIEW)
    if isinstance(built, NewView) and built.view == r.view:
        r.new_view_sent = built
        if r.view_changing:
            fx.send.append(Send(None, built))
    elif isinstance(built, NewViewPlan) and built.view == r.view and r.view_changing:
        from consensus.pbft.view_change import send_plan
        r.new_view_plan = built
        send_plan(r, fx)
