"""Byzantine behaviours, written once over the engine contract.

A behaviour sees each message a byzantine node's driver is about to sign and send
(`Send(to, message)`, `to=None` for everyone) and returns what really goes out: a list of
`(destination, message)` or `(destination, message, signature)` (a forged signature), or
`Delivery` items that may also delay a copy. Nothing here knows an engine's classes; it
works on the contract's shapes:

- messages that name a place in the protocol (`sign_position()`) are the ones whose
  conflicting copies are equivocation;
- a `consensus.types.Block` inside a message is a proposal; a 32-byte `bytes` field is
  a block hash or digest; replacing a block rewrites every field that named its hash, so
  the conflicting copy is self-consistent (a receiver must catch it by the protocol's
  rules, not by a broken digest).

Behaviours (names as on the command line and in scenario files):
  silent      sends nothing at all;
  equivocate  sends one version of every positioned message to half the peers and a
              conflicting one (other block, other hash) to the rest;
  forge       sends votes for blocks that do not exist and copies with invalid signatures;
  replay      sends, besides what the engine wanted, messages it sent earlier again;
  slow        holds each of its messages back for up to `SLOW_DELAY_MS_MAX`;
  twins       a second node runs with the same key (Bano et al., Twins, OPODIS 2021); the
              runner builds the twin, the behaviour itself passes messages through.
"""
from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass

from consensus.api import Send, sign_position
from consensus.types import HASH_BYTES, Block, make_block

SLOW_DELAY_MS_MAX = 1_500  # about one view timeout: late enough to hurt, not to vanish
REPLAY_HISTORY_MAX = 256  # old messages a replaying node keeps to send again
REPLAY_PROBABILITY = 0.3
FORGE_PROBABILITY = 0.5


@dataclass(frozen=True, slots=True)
class ByzantineContext:
    """What a behaviour knows when it decides: who it is, when, and its own seeded RNG."""
    node_id: int
    nodes: int
    chain_id: str
    now_ms: int
    rng: random.Random


@dataclass(frozen=True, slots=True)
class Delivery:
    dst: int
    message: object
    signature: bytes | None = None  # None: sign it honestly
    delay_ms: int = 0
    replayed: bool = False  # an old message sent again (counted)


Behaviour = Callable[[ByzantineContext, Send], list]


def _targets(ctx: ByzantineContext, send: Send) -> list[int]:
    return [send.to] if send.to is not None else list(range(ctx.nodes))


def honest(ctx: ByzantineContext, send: Send) -> list[Delivery]:
    return [Delivery(dst, send.message) for dst in _targets(ctx, send)]


def silent(ctx: ByzantineContext, send: Send) -> list[Delivery]:
    return []


# ------------------------------------------------------------------ conflicting copies
def _other_block(block: Block, ctx: ByzantineContext) -> Block:
    h = block.header
    txs = block.txs + (b"byzantine:" + ctx.rng.randbytes(8),)
    return make_block(h.chain_id, h.height, h.parent_hash, txs, h.proposer, h.timestamp_ms,
                      h.state_height, h.state_root)


def conflicting_copy(message: object, ctx: ByzantineContext) -> object | None:
    """The same message with another block (and every field that named its hash), or
    another 32-byte hash; None when the message has nothing to conflict about."""
    if not dataclasses.is_dataclass(message) or isinstance(message, type):
        return None
    fields = dataclasses.fields(message)
    blocks = {f.name: getattr(message, f.name) for f in fields
              if isinstance(getattr(message, f.name), Block)}
    changes: dict[str, object] = {}
    if blocks:
        for name, block in blocks.items():
            other = _other_block(block, ctx)
            changes[name] = other
            for f in fields:
                if getattr(message, f.name) == block.block_hash:
                    changes[f.name] = other.block_hash
        return dataclasses.replace(message, **changes)
    for f in fields:
        value = getattr(message, f.name)
        if isinstance(value, bytes) and len(value) == HASH_BYTES and f.name != "parent_hash":
            return dataclasses.replace(message, **{f.name: ctx.rng.randbytes(HASH_BYTES)})
    return None


def equivocate(ctx: ByzantineContext, send: Send) -> list[Delivery]:
    targets = _targets(ctx, send)
    if sign_position(send.message) is None:
        return [Delivery(dst, send.message) for dst in targets]
    twin = conflicting_copy(send.message, ctx)
    if twin is None:
        return [Delivery(dst, send.message) for dst in targets]
    half = ctx.nodes // 2
    # Peers below `half` get the engine's message, the rest the conflicting copy; when
    # the engine sends to one peer only, that peer gets both (it must catch the conflict).
    if send.to is not None:
        return [Delivery(send.to, send.message), Delivery(send.to, twin)]
    return [Delivery(dst, send.message if dst < half or dst == ctx.node_id else twin)
            for dst in targets]


def forge(ctx: ByzantineContext, send: Send) -> list[Delivery]:
    out = []
    for dst in _targets(ctx, send):
        roll = ctx.rng.random()
        if dst == ctx.node_id or roll >= FORGE_PROBABILITY:
            out.append(Delivery(dst, send.message))
            continue
        phantom = conflicting_copy(send.message, ctx)  # a vote for a block nobody proposed
        if phantom is not None and roll < FORGE_PROBABILITY / 2:
            out.append(Delivery(dst, phantom))
        else:
            out.append(Delivery(dst, send.message, signature=ctx.rng.randbytes(32)))
    return out


class Replayer:
    """Keeps a bounded history of what the node sent and sends old messages again."""

    def __init__(self) -> None:
        self.history: list[object] = []

    def __call__(self, ctx: ByzantineContext, send: Send) -> list[Delivery]:
        out = [Delivery(dst, send.message) for dst in _targets(ctx, send)]
        if self.history and ctx.rng.random() < REPLAY_PROBABILITY:
            old = self.history[ctx.rng.randrange(len(self.history))]
            out += [Delivery(dst, old, replayed=True) for dst in range(ctx.nodes)
                    if dst != ctx.node_id]
        self.history.append(send.message)
        if len(self.history) > REPLAY_HISTORY_MAX:
            del self.history[: len(self.history) - REPLAY_HISTORY_MAX]
        return out


def slow(ctx: ByzantineContext, send: Send) -> list[Delivery]:
    return [Delivery(dst, send.message,
                     delay_ms=0 if dst == ctx.node_id else ctx.rng.randrange(SLOW_DELAY_MS_MAX))
            for dst in _targets(ctx, send)]


BEHAVIOURS: dict[str, Callable[[], Behaviour]] = {
    "silent": lambda: silent,
    "equivocate": lambda: equivocate,
    "forge": lambda: forge,
    "replay": Replayer,
    "slow": lambda: slow,
    "twins": lambda: honest,
}


def behaviour_named(name: str) -> Behaviour:
    factory = BEHAVIOURS.get(name)
    if factory is None:
        raise ValueError(f"unknown byzantine behaviour {name!r}; one of "
                         f"{', '.join(sorted(BEHAVIOURS))}")
    return factory()


def as_delivery(item: object) -> Delivery:
    """Behaviours may return tuples (older tests) or Delivery items."""
    if isinstance(item, Delivery):
        return item
    dst, message, *rest = item  # type: ignore[misc]
    return Delivery(dst, message, rest[0] if rest else None)
