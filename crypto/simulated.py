"""A fast, deterministic stand-in for node signatures in simulations. NOT SECURE.

Each node's key is derived from the run's seed and a "signature" is HMAC-SHA256 over
`consensus.types.signing_bytes(chain_id, message)`. The verifier knows every node's key,
which is what makes it insecure and what a simulator wants (same seed, same trace).
Never use it in the daemon.

Shapes match the real classes in crypto.signer:
    SimulatedSigner.sign(message) -> bytes            like ConsensusSigner.sign
    SimulatedSigner.signed(message) -> (bytes, sig)   like ConsensusSigner.signed
    SimulatedVerifier.verify(sender, message, sig)     like ValidatorVerifier.verify
The simulator (simulations/node.py, simulations/runner.py) uses these classes.
"""
from __future__ import annotations

import hashlib
import hmac

from consensus.types import NodeId, signing_bytes

SIGNATURE_BYTES = 32


def node_key(seed: int, node_id: NodeId) -> bytes:
    return hashlib.sha256(b"QENEX/sim-key" + seed.to_bytes(16, "big", signed=True)
                          + node_id.to_bytes(4, "big")).digest()


def simulated_public_key(seed: int, node_id: NodeId) -> bytes:
    return hashlib.sha256(node_key(seed, node_id)).digest()


class SimulatedSigner:
    def __init__(self, seed: int, node_id: NodeId, chain_id: str) -> None:
        self.node_id = node_id
        self.chain_id = chain_id
        self._key = node_key(seed, node_id)
        self.public_key = hashlib.sha256(self._key).digest()

    def sign_bytes(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def signed(self, message: object) -> tuple[bytes, bytes]:
        data = signing_bytes(self.chain_id, message)
        return data, self.sign_bytes(data)

    def sign(self, message: object) -> bytes:
        return self.signed(message)[1]


class SimulatedVerifier:
    def __init__(self, seed: int, nodes: int, chain_id: str) -> None:
        self.chain_id = chain_id
        self._keys = [node_key(seed, node) for node in range(nodes)]
        self.checks = 0

    def verify(self, sender: NodeId, message: object, signature: bytes) -> bool:
        if not isinstance(sender, int) or not 0 <= sender < len(self._keys):
            return False
        self.checks += 1
        data = signing_bytes(self.chain_id, message)
        expected = hmac.new(self._keys[sender], data, hashlib.sha256).digest()
        return hmac.compare_digest(expected, signature)

    def public_key(self, node_id: NodeId) -> bytes:
        return hashlib.sha256(self._keys[node_id]).digest()
