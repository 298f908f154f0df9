"""The state root: a compact sparse Merkle tree over SHA-256(address), with proofs.

Definition (scheme name "qenex-csmt-sha256-v1"; what clients verify):
    key(address)       = SHA-256(address), read as 256 bits, most significant first
    leaf(key, value)   = SHA-256(0x00 || key || SHA-256(value))   value = account bytes
    node(left, right)  = SHA-256(0x01 || left || right)
    hash(subtree)      = EMPTY (32 zero bytes) if it holds no account,
                         leaf(...) of its only account if it holds exactly one,
                         node(hash(left half), hash(right half)) otherwise.
So each account sits at the shallowest depth where it is alone in its subtree, and the
root does not depend on how a node stores the tree.

Storage and cost: the top `bucket_bits` levels are kept as arrays of hashes and leaf
counts (0, 1 or "2+"); below them, each bucket holds the few accounts whose keys share its
prefix and is hashed from scratch when touched. `bucket_bits` is chosen so that buckets
hold about one account, and the tree is rebuilt with more bits when the state grows
fourfold (amortised O(1) per account). A block therefore costs O(touched * depth) hashes,
independent of the total number of accounts.

Proof: the siblings along the key's path from the root down to the depth where the path
ends (at the account, at an empty subtree, or at another account with the same prefix:
non-membership), listed root first. See `verify_account_proof`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

KEY_BITS = 256
EMPTY = b"\x00" * 32
PROOF_SCHEME = "qenex-csmt-sha256-v1"
BUCKET_BITS_MIN = 4
BUCKET_BITS_MAX = 22  # 4 M buckets: arrays of ~8 M entries, beyond that buckets just grow
GROWTH_FACTOR = 4  # rebuild with more bucket bits when accounts > 4 * buckets

_sha256 = hashlib.sha256


def key_of(address: bytes) -> int:
    return int.from_bytes(_sha256(address).digest(), "big")


def leaf_hash(key: int, value: bytes) -> bytes:
    return _leaf_from_value_hash(key, _sha256(value).digest())


def _leaf_from_value_hash(key: int, value_hash: bytes) -> bytes:
    return _sha256(b"\x00" + key.to_bytes(32, "big") + value_hash).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _bit(key: int, depth: int) -> int:
    return (key >> (KEY_BITS - 1 - depth)) & 1


def _subtree(items: list[tuple[int, bytes]], lo: int, hi: int, depth: int) -> bytes:
    """Hash of the compact subtree over sorted items[lo:hi], all sharing `depth` key bits."""
    count = hi - lo
    if count == 0:
        return EMPTY
    if count == 1:
        return items[lo][1]
    shift = KEY_BITS - 1 - depth
    mid = lo
    while mid < hi and not (items[mid][0] >> shift) & 1:
        mid += 1
    return _sha256(b"\x01" + _subtree(items, lo, mid, depth + 1)
                   + _subtree(items, mid, hi, depth + 1)).digest()


@dataclass(frozen=True, slots=True)
class AccountProof:
    """Authentication path for one address against a state root.

    siblings: root first. other_leaf: for non-membership ending at another account, that
    account's key (32 B) and SHA-256 of its bytes; empty otherwise.
    """
    siblings: tuple[bytes, ...]
    other_key: bytes = b""
    other_value_hash: bytes = b""


def _bits_for(accounts: int) -> int:
    return max(BUCKET_BITS_MIN, min(BUCKET_BITS_MAX, max(accounts, 1).bit_length()))


class StateTree:
    """Mutable tree: `set(address, bytes|None)` many times, then `root()` once per block."""

    def __init__(self, leaves: dict[int, bytes] | None = None, bucket_bits: int | None = None):
        """`leaves`: key -> SHA-256(account bytes)."""
        leaves = leaves or {}
        self.bits = bucket_bits if bucket_bits is not None else _bits_for(len(leaves))
        self._buckets: list[dict[int, bytes] | None] = [None] * (1 << self.bits)
        self._size = 0
        shift = KEY_BITS - self.bits
        for key, value_leaf in leaves.items():
            index = key >> shift
            bucket = self._buckets[index]
            if bucket is None:
                bucket = self._buckets[index] = {}
            bucket[key] = value_leaf
            self._size += 1
        self._dirty: set[int] = set()
        self._build_levels()

    @classmethod
    def from_accounts(cls, items: list[tuple[bytes, bytes]] | dict[bytes, bytes]) -> StateTree:
        """From (address, account bytes) pairs."""
        pairs = items.items() if isinstance(items, dict) else items
        leaves = {}
        for address, value in pairs:
            leaves[key_of(address)] = _sha256(value).digest()
        return cls(leaves)

    def __len__(self) -> int:
        return self._size

    def _bucket_hash(self, index: int) -> tuple[bytes, int]:
        bucket = self._buckets[index]
        if not bucket:
            return EMPTY, 0
        if len(bucket) == 1:
            key, value_hash = next(iter(bucket.items()))
            return _leaf_from_value_hash(key, value_hash), 1
        items = sorted((k, _leaf_from_value_hash(k, v)) for k, v in bucket.items())
        return _subtree(items, 0, len(items), self.bits), 2

    def _build_levels(self) -> None:
        bottom = [self._bucket_hash(i) for i in range(1 << self.bits)]
        self._hashes = [[h for h, _ in bottom]]
        self._counts = [bytearray(c for _, c in bottom)]
        for _ in range(self.bits):
            hashes, counts = self._hashes[0], self._counts[0]
            up_h, up_c = [], bytearray()
            for i in range(0, len(hashes), 2):
                h, c = _combine(hashes[i], counts[i], hashes[i + 1], counts[i + 1])
                up_h.append(h)
                up_c.append(c)
            self._hashes.insert(0, up_h)
            self._counts.insert(0, up_c)
        # now self._hashes[d] is level d (0 = root), self._hashes[bits] the buckets

    def set(self, address: bytes, value: bytes | None) -> None:
        """Insert/replace the account bytes at `address`, or delete it (None)."""
        key = key_of(address)
        index = key >> (KEY_BITS - self.bits)
        bucket = self._buckets[index]
        if value is None:
            if bucket and bucket.pop(key, None) is not None:
                self._size -= 1
                self._dirty.add(index)
            return
        if bucket is None:
            bucket = self._buckets[index] = {}
        if key not in bucket:
            self._size += 1
        bucket[key] = _sha256(value).digest()
        self._dirty.add(index)

    def root(self) -> bytes:
        if self._size > GROWTH_FACTOR << self.bits and self.bits < BUCKET_BITS_MAX:
            self._regrow()
        if self._dirty:
            self._update(self._dirty)
            self._dirty = set()
        return self._hashes[0][0]

    def leaf_items(self) -> list[tuple[int, bytes]]:
        """(key, SHA-256 of account bytes) for every account, in key order."""
        return sorted(item for bucket in self._buckets if bucket for item in bucket.items())

    def _regrow(self) -> None:
        self.__init__(dict(self.leaf_items()))  # type: ignore[misc]

    def _update(self, dirty: set[int]) -> None:
        level_h, level_c = self._hashes[self.bits], self._counts[self.bits]
        for index in dirty:
            level_h[index], level_c[index] = self._bucket_hash(index)
        touched = dirty
        sha256 = _sha256
        for depth in range(self.bits - 1, -1, -1):
            below_h, below_c = self._hashes[depth + 1], self._counts[depth + 1]
            here_h, here_c = self._hashes[depth], self._counts[depth]
            touched = {i >> 1 for i in touched}
            for i in touched:  # _combine, inlined: this loop is the hot path of a block
                left = i << 1
                left_count, right_count = below_c[left], below_c[left + 1]
                if left_count + right_count >= 2:
                    here_h[i] = sha256(b"\x01" + below_h[left] + below_h[left + 1]).digest()
                    here_c[i] = 2
                elif left_count:
                    here_h[i], here_c[i] = below_h[left], 1
                elif right_count:
                    here_h[i], here_c[i] = below_h[left + 1], 1
                else:
                    here_h[i], here_c[i] = EMPTY, 0

    def prove(self, address: bytes) -> AccountProof:
        """Proof of membership or non-membership of `address` in the current root."""
        self.root()
        key = key_of(address)
        siblings: list[bytes] = []
        for depth in range(self.bits):
            if self._counts[depth][key >> (KEY_BITS - depth)] < 2:
                return self._terminal(key, depth, siblings)
            child = key >> (KEY_BITS - depth - 1)
            siblings.append(self._hashes[depth + 1][child ^ 1])
        return self._prove_in_bucket(key, siblings)

    def _terminal(self, key: int, depth: int, siblings: list[bytes]) -> AccountProof:
        index = key >> (KEY_BITS - depth)
        if self._counts[depth][index] == 0:
            return AccountProof(tuple(siblings))
        # exactly one account below: find its bucket by following the non-empty side
        for level in range(depth + 1, self.bits + 1):
            index = index * 2 if self._counts[level][index * 2] else index * 2 + 1
        bucket = self._buckets[index]
        assert bucket and len(bucket) == 1
        return self._leaf_terminal(key, next(iter(bucket.items())), siblings)

    def _leaf_terminal(self, key: int, item: tuple[int, bytes], siblings: list[bytes]) -> AccountProof:
        other_key = item[0]
        if other_key == key:
            return AccountProof(tuple(siblings))
        bucket = self._buckets[other_key >> (KEY_BITS - self.bits)] or {}
        return AccountProof(tuple(siblings), other_key.to_bytes(32, "big"), bucket[other_key])

    def _prove_in_bucket(self, key: int, siblings: list[bytes]) -> AccountProof:
        bucket = self._buckets[key >> (KEY_BITS - self.bits)] or {}
        items = sorted((k, _leaf_from_value_hash(k, v)) for k, v in bucket.items())
        depth = self.bits
        while len(items) >= 2:
            left = [it for it in items if not _bit(it[0], depth)]
            right = [it for it in items if _bit(it[0], depth)]
            mine, other = (right, left) if _bit(key, depth) else (left, right)
            siblings.append(_subtree(other, 0, len(other), depth + 1))
            items = mine
            depth += 1
        if not items:
            return AccountProof(tuple(siblings))
        return self._leaf_terminal(key, items[0], siblings)


def _combine(left: bytes, left_count: int, right: bytes, right_count: int) -> tuple[bytes, int]:
    total = left_count + right_count
    if total >= 2:
        return _sha256(b"\x01" + left + right).digest(), 2
    if total == 0:
        return EMPTY, 0
    return (left if left_count else right), 1


def verify_account_proof(root: bytes, address: bytes, account_bytes: bytes | None,
                         proof: AccountProof) -> bool:
    """True iff `proof` shows that `address` holds `account_bytes` (None: holds nothing).

    Pure and self-contained: a client needs only this function, SHA-256 and a state root
    taken from a header that a commit certificate makes final.
    """
    key = key_of(address)
    depth = len(proof.siblings)
    if depth > KEY_BITS:
        return False
    if account_bytes is not None:
        if proof.other_key:
            return False
        node = leaf_hash(key, account_bytes)
    elif proof.other_key:
        other = int.from_bytes(proof.other_key, "big")
        if len(proof.other_key) != 32 or len(proof.other_value_hash) != 32 or other == key:
            return False
        if depth and (other >> (KEY_BITS - depth)) != (key >> (KEY_BITS - depth)):
            return False  # the other account must sit on this key's path
        node = _sha256(b"\x00" + proof.other_key + proof.other_value_hash).digest()
    else:
        node = EMPTY
    for depth_index in range(depth - 1, -1, -1):
        sibling = proof.siblings[depth_index]
        if _bit(key, depth_index):
            node = node_hash(sibling, node)
        else:
            node = node_hash(node, sibling)
    return node == root
