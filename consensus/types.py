"""Domain types every engine shares: validators, blocks, signed votes and certificates.

Blocks are identified by the SHA-256 of their canonical header; the header commits to the
transactions through `tx_root` (an RFC 6962 style Merkle root, so a client can be shown
that a transaction is in a block). ML-DSA signatures are randomised, so signatures never
enter a block hash: certificates travel beside blocks, not inside their hash.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from consensus import canonical

HASH_BYTES = 32
GENESIS_HASH = b"\x00" * HASH_BYTES
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeId = int  # index of a validator in the validator set, 0 .. n-1


def max_faulty_bft(nodes: int) -> int:
    """Largest f with n >= 3f + 1 (PBFT, HotStuff, Tendermint)."""
    return (nodes - 1) // 3


def bft_quorum(nodes: int, faults: int | None = None) -> int:
    """Votes needed so any two quorums share an honest node: n - f (= 2f + 1 when n = 3f + 1).

    The one definition every byzantine-tolerant rule uses (PBFT's prepared, committed and
    stable-checkpoint predicates, certificate checks). `faults` is a configured f
    (`EngineConfig.fault_tolerance`); None derives the largest f that n allows."""
    return nodes - (max_faulty_bft(nodes) if faults is None else faults)


def max_faulty_cft(nodes: int) -> int:
    """Largest number of crashes a majority protocol (Raft) survives."""
    return (nodes - 1) // 2


def cft_quorum(nodes: int) -> int:
    """A strict majority: any two intersect."""
    return nodes // 2 + 1


@canonical.register("qenex.validator.v1")
@dataclass(frozen=True, slots=True)
class Validator:
    node_id: NodeId
    public_key: bytes  # the node's ML-DSA-87 identity key (or a simulator stand-in)
    power: int = 1


@canonical.register("qenex.validator_set.v1")
@dataclass(frozen=True, slots=True)
class ValidatorSet:
    validators: tuple[Validator, ...]

    def __post_init__(self) -> None:
        ids = [v.node_id for v in self.validators]
        if ids != list(range(len(ids))):
            raise ValueError("validator ids must be 0 .. n-1 in order")

    @property
    def size(self) -> int:
        return len(self.validators)

    @property
    def node_ids(self) -> tuple[NodeId, ...]:
        return tuple(v.node_id for v in self.validators)

    def public_key(self, node_id: NodeId) -> bytes:
        return self.validators[node_id].public_key

    def __contains__(self, node_id: object) -> bool:
        return isinstance(node_id, int) and 0 <= node_id < len(self.validators)


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: tuple[bytes, ...] | list[bytes]) -> bytes:
    """RFC 6962 Merkle tree hash (leaf/node prefixes stop second-preimage tricks)."""
    level = [_leaf_hash(leaf) for leaf in leaves]
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [_node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def merkle_proof(leaves: tuple[bytes, ...] | list[bytes], index: int) -> tuple[bytes, ...]:
    """Audit path for leaf `index`, bottom-up; check it with `merkle_verify`."""
    level = [_leaf_hash(leaf) for leaf in leaves]
    path: list[bytes] = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        paired = [_node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
        index //= 2
    return tuple(path)


def merkle_verify(leaf: bytes, index: int, size: int, path: tuple[bytes, ...], root: bytes) -> bool:
    """Recompute the root from a leaf and its audit path (RFC 6962 §2.1.1)."""
    node = _leaf_hash(leaf)
    remaining = list(path)
    last = size - 1
    while last > 0:
        if index % 2 == 1:
            if not remaining:
                return False
            node = _node_hash(remaining.pop(0), node)
        elif index < last:
            if not remaining:
                return False
            node = _node_hash(node, remaining.pop(0))
        index //= 2
        last //= 2
    return not remaining and node == root


@canonical.register("qenex.block_header.v1")
@canonical.cache_encoding
@dataclass(frozen=True, slots=True)
class BlockHeader:
    chain_id: str
    height: int  # 1 for the first block after genesis
    parent_hash: bytes  # block_hash of height - 1; GENESIS_HASH for height 1
    tx_root: bytes  # merkle_root of the encoded signed transactions
    state_height: int  # the latest height whose state the proposer had applied
    state_root: bytes  # ledger state root after applying state_height (EMPTY_ROOT at 0)
    proposer: NodeId
    timestamp_ms: int  # proposer's clock, Unix milliseconds; the ledger's only time source


@canonical.register("qenex.block.v1")
@canonical.cache_encoding
@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    txs: tuple[bytes, ...]  # encoded SignedTransaction envelopes, opaque to consensus
    block_hash: bytes = field(default=b"", compare=False)

    def __post_init__(self) -> None:
        # The hash is derived, never trusted from the wire: recompute on every construction.
        object.__setattr__(self, "block_hash", canonical.digest(self.header))

    @property
    def height(self) -> int:
        return self.header.height

    def payload_bytes(self) -> int:
        return sum(len(tx) for tx in self.txs)

    def tx_root_matches(self) -> bool:
        return merkle_root(self.txs) == self.header.tx_root


def make_block(chain_id: str, height: int, parent_hash: bytes, txs: tuple[bytes, ...],
               proposer: NodeId, timestamp_ms: int, state_height: int = 0,
               state_root: bytes = EMPTY_ROOT) -> Block:
    header = BlockHeader(chain_id=chain_id, height=height, parent_hash=parent_hash,
                         tx_root=merkle_root(txs), state_height=state_height,
                         state_root=state_root, proposer=proposer, timestamp_ms=timestamp_ms)
    return Block(header=header, txs=txs)


@canonical.register("qenex.signed_message.v1")
@dataclass(frozen=True, slots=True)
class SignedMessage:
    """A consensus message with its sender's signature over `signing_bytes(chain, message)`.

    Engines keep these to build certificates (PBFT prepared/commit certificates, HotStuff
    QCs, Tendermint commits) that a third party can check.
    """
    sender: NodeId
    message: object
    signature: bytes


@canonical.register("qenex.certificate.v1")
@dataclass(frozen=True, slots=True)
class Certificate:
    """Proof that a block is final: a quorum of signed votes naming its hash and height.

    `kind` names the engine's rule for checking it ("pbft.commit", "raft.leader", ...).
    """
    kind: str
    height: int
    block_hash: bytes
    votes: tuple[SignedMessage, ...]


PROTOCOL_VERSION = 1
DOMAIN_PREFIX = b"QENEX/consensus"


def signing_bytes(chain_id: str, message: object, version: int = PROTOCOL_VERSION) -> bytes:
    """The exact bytes a node signs for `message`: a domain tag, then the canonical body.

    The tag holds chain id, message kind and protocol version, so a signature for one chain,
    kind or version never verifies as another.
    """
    kind = canonical.wire_name(type(message)).encode()
    tag = canonical.encode((DOMAIN_PREFIX, chain_id, kind, version))
    return tag + canonical.encode(message)
