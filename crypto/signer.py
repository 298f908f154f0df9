"""What the daemon calls to sign and verify consensus messages.

    signer = ConsensusSigner(chain_id, node_signer, guard)
    signature = signer.sign(message)            # guard-checked, durable before returning
    verifier = ValidatorVerifier(chain_id, validator_set)
    verifier.verify(sender, message, signature) # consensus.api.Verifier

Both cover exactly `consensus.types.signing_bytes(chain_id, message)`: a domain tag
(prefix, chain id, message kind, protocol version) and the canonical body.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

from consensus.api import sign_position
from consensus.types import NodeId, ValidatorSet, signing_bytes
from crypto import tpm
from crypto.errors import GuardError, KeyStoreError
from crypto.guard import SignGuard
from crypto.keystore import NodeSigner, TpmKeyStoreConfig
from crypto.schemes import KeyVerifier, Scheme


class ConsensusSigner:
    """chain id + double-sign guard + node key: `sign(message) -> signature`."""

    def __init__(self, chain_id: str, node: NodeSigner, guard: SignGuard) -> None:
        self.chain_id = chain_id
        self.node = node
        self.guard = guard
        self.public_key = node.public_key

    def signed(self, message: object) -> tuple[bytes, bytes]:
        """(signed bytes, signature); messages without a position bypass the guard."""
        data = signing_bytes(self.chain_id, message)
        position = sign_position(message)
        if position is None:
            return data, self.node.sign(data)
        monotonic = getattr(message, "sign_monotonic", None)
        return data, self.guard.sign(position, data, self.node.sign, monotonic)

    def sign(self, message: object) -> bytes:
        return self.signed(message)[1]


class ValidatorVerifier:
    """consensus.api.Verifier over a validator set, with a small bounded result cache.

    The cache key is (sender, SHA-256 of the signed bytes, SHA-256 of the signature), so a
    vote seen again inside a certificate costs a hash instead of an ML-DSA verify.
    """

    def __init__(self, chain_id: str, validators: ValidatorSet,
                 scheme: Scheme = Scheme.ML_DSA_87, cache_entries_max: int = 4096) -> None:
        self.chain_id = chain_id
        self._verifiers: list[KeyVerifier | None] = []
        for validator in validators.validators:
            try:
                self._verifiers.append(KeyVerifier(scheme, validator.public_key))
            except ValueError:
                self._verifiers.append(None)  # malformed key: that validator never verifies
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self._cache_max = cache_entries_max
        self.checks = 0

    def verify(self, sender: NodeId, message: object, signature: bytes) -> bool:
        if not isinstance(sender, int) or not 0 <= sender < len(self._verifiers):
            return False
        verifier = self._verifiers[sender]
        if verifier is None:
            return False
        data = signing_bytes(self.chain_id, message)
        key = hashlib.sha256(sender.to_bytes(4, "big") + hashlib.sha256(data).digest()
                             + hashlib.sha256(signature).digest()).digest()
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        self.checks += 1
        result = verifier.verify(data, signature)
        self._cache[key] = result
        if len(self._cache) > self._cache_max:
            self._cache.popitem(last=False)
        return result

    def public_key(self, node_id: NodeId) -> bytes:
        verifier = self._verifiers[node_id]
        return verifier.public_key if verifier else b""


class TpmGuardCounter:
    """The guard's rollback anchor: a TPM NV counter kept open for the node's lifetime."""

    def __init__(self, tcti: str, index: int) -> None:
        self._context = tpm.open_tpm(tcti)
        self._esapi = self._context.__enter__()
        self.index = index
        self.existed = self._exists()

    def _exists(self) -> bool:
        try:
            tpm.counter_read(self._esapi, self.index, create=False)
            return True
        except tpm.tss_error():
            return False

    def read(self) -> int:
        return tpm.counter_read(self._esapi, self.index, create=True)

    def increment(self) -> int:
        return tpm.counter_increment(self._esapi, self.index)

    def close(self) -> None:
        self._context.__exit__(None, None, None)


def open_guard(path: Path, node: NodeSigner, store: object | None = None) -> SignGuard:
    """The node's guard; anchored to a TPM NV counter when the key store is a TPM."""
    if isinstance(store, TpmKeyStoreConfig) and store.guard_nv_index is not None:
        try:
            counter = TpmGuardCounter(store.tcti, store.guard_nv_index)
        except KeyStoreError as exc:
            raise GuardError(str(exc)) from None
        return SignGuard(path, node.public_key, counter=counter,
                         counter_is_new=not counter.existed)
    return SignGuard(path, node.public_key)
