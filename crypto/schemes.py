"""Signature schemes by wire id (proto qenex.v1.SignatureScheme): one place to sign/verify.

The crypto issue grows this into Signer/Verifier classes and key stores; this module is
the stable entry point the ledger uses to check client signatures.
"""
from __future__ import annotations

import enum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import mldsa
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey


class Scheme(enum.IntEnum):
    ED25519 = 1
    ML_DSA_44 = 2
    ML_DSA_65 = 3
    ML_DSA_87 = 4


_MLDSA_PUBLIC = {
    Scheme.ML_DSA_44: mldsa.MLDSA44PublicKey,
    Scheme.ML_DSA_65: mldsa.MLDSA65PublicKey,
    Scheme.ML_DSA_87: mldsa.MLDSA87PublicKey,
}
_MLDSA_PRIVATE = {
    Scheme.ML_DSA_44: mldsa.MLDSA44PrivateKey,
    Scheme.ML_DSA_65: mldsa.MLDSA65PrivateKey,
    Scheme.ML_DSA_87: mldsa.MLDSA87PrivateKey,
}
PUBLIC_KEY_BYTES = {Scheme.ED25519: 32, Scheme.ML_DSA_44: 1312, Scheme.ML_DSA_65: 1952,
                    Scheme.ML_DSA_87: 2592}
SIGNATURE_BYTES = {Scheme.ED25519: 64, Scheme.ML_DSA_44: 2420, Scheme.ML_DSA_65: 3309,
                   Scheme.ML_DSA_87: 4627}
SEED_BYTES = 32


def public_key_from_seed(scheme: Scheme, seed: bytes) -> bytes:
    if scheme == Scheme.ED25519:
        return bytes(SigningKey(seed).verify_key)
    key = _MLDSA_PRIVATE[scheme].from_seed_bytes(seed)
    return key.public_key().public_bytes_raw()


def sign_with_seed(scheme: Scheme, seed: bytes, message: bytes) -> bytes:
    """Sign with a key rebuilt from its 32-byte seed (the only secret a key store keeps)."""
    if scheme == Scheme.ED25519:
        return SigningKey(seed).sign(message).signature
    return _MLDSA_PRIVATE[scheme].from_seed_bytes(seed).sign(message)


def verify(scheme: int, public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True only for a valid signature; malformed keys or unknown schemes give False."""
    try:
        kind = Scheme(scheme)
    except ValueError:
        return False
    if len(public_key) != PUBLIC_KEY_BYTES[kind] or len(signature) != SIGNATURE_BYTES[kind]:
        return False
    if kind == Scheme.ED25519:
        try:
            VerifyKey(public_key).verify(message, signature)
            return True
        except BadSignatureError:
            return False
    try:
        _MLDSA_PUBLIC[kind].from_public_bytes(public_key).verify(signature, message)
        return True
    except (InvalidSignature, ValueError):
        return False
