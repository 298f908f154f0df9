"""Admission of messages that are early: the bounded buffer of future messages.

Theory of operation
-------------------
PBFT replicas accept a protocol message only when it is in their view and between the
water marks (Castro & Liskov 1999 §4.2: "the sequence number n is between a low water mark
h and a high water mark H"; TOCS 2002 §4.3). Messages for a later view or above H are not
wrong, only early - a replica that lags in view or checkpoint will want them once it
catches up - so they wait here and are replayed when the view is installed or the low
water mark moves. Each sender gets an equal share of `pending_messages_max`, so a
byzantine replica flooding future messages cannot crowd out honest ones (ARCHITECTURE
rule 5: a limit on everything, refusal when full).
"""
from __future__ import annotations

from consensus.api import EffectsBuilder, RejectReason
from consensus.pbft.state import Replica
from consensus.types import NodeId


def buffer_future(r: Replica, fx: EffectsBuilder, sender: NodeId, message: object,
                  signature: bytes, why: str) -> None:
    share = max(1, r.config.pending_messages_max // r.nodes)
    held = r.pending_per_sender.get(sender, 0)
    if held >= share:
        fx.reject(RejectReason.OVER_LIMIT, sender, f"future-message buffer full ({why})")
        return
    r.pending.append((sender, message, signature))
    r.pending_per_sender[sender] = held + 1
    fx.reject(RejectReason.FUTURE, sender, f"buffered: {why}")


def take_pending(r: Replica) -> list[tuple[NodeId, object, bytes]]:
    """Hand every buffered message back for another try (those still early come back)."""
    pending, r.pending = r.pending, []
    r.pending_per_sender = {}
    return pending
