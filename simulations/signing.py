"""A fast deterministic stand-in for ML-DSA in simulations. NOT SECURE.

Each node's key is derived from the run's seed; a "signature" is HMAC-SHA256 over
consensus.types.signing_bytes. The verifier knows every key, which is exactly what makes
it insecure and exactly what a simulator needs: byzantine nodes still cannot forge honest
nodes' signatures because they are only handed their own signer.
"""
from __future__ import annotations

import hashlib
import hmac

from consensus.types import NodeId, signing_bytes


def _node_key(seed: int, node_id: NodeId) -> bytes:
    return hashlib.sha256(b"QENEX/sim-key" + seed.to_bytes(16, "big", signed=True)
                          + node_id.to_bytes(4, "big")).digest()


class SimulatedSigner:
    def __init__(self, seed: int, node_id: NodeId, chain_id: str) -> None:
        self.node_id = node_id
        self.chain_id = chain_id
        self._key = _node_key(seed, node_id)
        self.public_key = hashlib.sha256(self._key).digest()

    def sign_bytes(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def sign(self, message: object) -> tuple[bytes, bytes]:
        """Return (signed bytes, signature) for a consensus message."""
        data = signing_bytes(self.chain_id, message)
        return data, self.sign_bytes(data)


class SimulatedVerifier:
    def __init__(self, seed: int, nodes: int, chain_id: str) -> None:
        self.chain_id = chain_id
        self._keys = [_node_key(seed, node) for node in range(nodes)]
        self.checks = 0

    def verify(self, sender: NodeId, message: object, signature: bytes) -> bool:
        if not 0 <= sender < len(self._keys):
            return False
        self.checks += 1
        data = signing_bytes(self.chain_id, message)
        expected = hmac.new(self._keys[sender], data, hashlib.sha256).digest()
        return hmac.compare_digest(expected, signature)

    def public_key(self, node_id: NodeId) -> bytes:
        return hashlib.sha256(self._keys[node_id]).digest()
