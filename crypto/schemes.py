"""Signature schemes by wire id (proto qenex.v1.SignatureScheme): one place to sign/verify.

Stateless functions (`sign_with_seed`, `verify`, `public_key_from_seed`) are the stable
entry points the ledger uses to check client signatures. `SeedSigner` / `KeyVerifier` hold
a parsed key for repeated use (the `Signer` / `PublicKeyVerifier` protocols). ML-KEM-1024
helpers serve the peer channel. SLH-DSA lives in crypto.oqs_backend (optional liboqs).
"""
from __future__ import annotations

import enum
import hashlib
import os
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from consensus import canonical
from consensus.types import PROTOCOL_VERSION


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


# ------------------------------------------------------------ Signer / Verifier objects
# The functions above are the stable, stateless entry points (the ledger uses them). The
# classes below hold a parsed key so a node does not rebuild it for every message.
@runtime_checkable
class Signer(Protocol):
    scheme: Scheme
    public_key: bytes

    def sign(self, message: bytes) -> bytes: ...


@runtime_checkable
class PublicKeyVerifier(Protocol):
    scheme: Scheme
    public_key: bytes

    def verify(self, message: bytes, signature: bytes) -> bool: ...


class SeedSigner:
    """A signer rebuilt from a 32-byte seed held in memory (never written in plaintext)."""

    __slots__ = ("_key", "public_key", "scheme")

    def __init__(self, scheme: Scheme, seed: bytes) -> None:
        if len(seed) != SEED_BYTES:
            raise ValueError(f"seed must be {SEED_BYTES} bytes, got {len(seed)}")
        self.scheme = Scheme(scheme)
        if self.scheme == Scheme.ED25519:
            self._key: object = SigningKey(seed)
            self.public_key = bytes(self._key.verify_key)  # type: ignore[attr-defined]
        else:
            self._key = _MLDSA_PRIVATE[self.scheme].from_seed_bytes(seed)
            self.public_key = self._key.public_key().public_bytes_raw()  # type: ignore

    def sign(self, message: bytes) -> bytes:
        if self.scheme == Scheme.ED25519:
            return self._key.sign(message).signature  # type: ignore[attr-defined]
        return self._key.sign(message)  # type: ignore[attr-defined]

    def __repr__(self) -> str:  # never show key material
        return f"SeedSigner({self.scheme.name}, public_key={self.public_key[:8].hex()}...)"


class KeyVerifier:
    """Verifies signatures of one public key; malformed input gives False, never raises."""

    __slots__ = ("_key", "public_key", "scheme")

    def __init__(self, scheme: Scheme, public_key: bytes) -> None:
        self.scheme = Scheme(scheme)
        if len(public_key) != PUBLIC_KEY_BYTES[self.scheme]:
            raise ValueError(f"{self.scheme.name} public key must be "
                             f"{PUBLIC_KEY_BYTES[self.scheme]} bytes, got {len(public_key)}")
        self.public_key = bytes(public_key)
        if self.scheme == Scheme.ED25519:
            self._key: object = VerifyKey(self.public_key)
        else:
            self._key = _MLDSA_PUBLIC[self.scheme].from_public_bytes(self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != SIGNATURE_BYTES[self.scheme]:
            return False
        try:
            if self.scheme == Scheme.ED25519:
                self._key.verify(message, signature)  # type: ignore[attr-defined]
            else:
                self._key.verify(signature, message)  # type: ignore[attr-defined]
            return True
        except (BadSignatureError, InvalidSignature, ValueError):
            return False


def generate_seed() -> bytes:
    return os.urandom(SEED_BYTES)


def scheme_from_name(name: str | int | Scheme) -> Scheme:
    """Accept "ML_DSA_87", "ml-dsa-87", "mldsa87", 4 or Scheme.ML_DSA_87."""
    if isinstance(name, int):
        return Scheme(name)
    wanted = name.upper().replace("-", "").replace("_", "")
    for scheme in Scheme:
        if scheme.name.replace("_", "") == wanted:
            return scheme
    raise ValueError(f"unknown signature scheme {name!r}; known: "
                     f"{', '.join(s.name for s in Scheme)}")


ADDRESS_BYTES = 20
ADDRESS_DOMAIN = b"QENEX/address"


def account_address(scheme: int, public_key: bytes) -> bytes:
    """THE address derivation (ledger accounts, key files, `qenex keys show`): the first 20
    bytes of SHA-256("QENEX/address" || scheme byte || public key); see transaction.proto."""
    return hashlib.sha256(ADDRESS_DOMAIN + bytes([scheme & 0xFF]) + public_key).digest()[
        :ADDRESS_BYTES]


def address_of(public_key: bytes, scheme: int = 4) -> str:
    """`account_address` in hex; the default scheme 4 is ML-DSA-87, the node identity."""
    return account_address(scheme, public_key).hex()


# ------------------------------------------------------------ domain-tagged bytes
def tagged(domain: str, chain_id: str, kind: str, body: bytes,
           version: int = PROTOCOL_VERSION) -> bytes:
    """Bytes a non-consensus signature covers (channel handshake, attestation, genesis).

    Consensus messages use consensus.types.signing_bytes, which builds the same kind of tag
    from the message class; both put domain, chain id, kind and version before the body so
    a signature made under one tag never verifies under another.
    """
    return canonical.encode((domain.encode(), chain_id, kind, version)) + body


# ------------------------------------------------------------ ML-KEM-1024
KEM_PUBLIC_KEY_BYTES = 1568
KEM_CIPHERTEXT_BYTES = 1568
KEM_SHARED_SECRET_BYTES = 32


def kem_keypair() -> tuple[mlkem.MLKEM1024PrivateKey, bytes]:
    """An ephemeral ML-KEM-1024 key pair: (private key object, encoded public key)."""
    private = mlkem.MLKEM1024PrivateKey.generate()
    return private, private.public_key().public_bytes_raw()


def kem_encapsulate(public_key: bytes) -> tuple[bytes, bytes]:
    """Return (shared secret, ciphertext); ValueError on a malformed public key."""
    if len(public_key) != KEM_PUBLIC_KEY_BYTES:
        raise ValueError("ML-KEM-1024 public key has the wrong length")
    shared, ciphertext = mlkem.MLKEM1024PublicKey.from_public_bytes(public_key).encapsulate()
    return shared, ciphertext


def kem_decapsulate(private: mlkem.MLKEM1024PrivateKey, ciphertext: bytes) -> bytes:
    if len(ciphertext) != KEM_CIPHERTEXT_BYTES:
        raise ValueError("ML-KEM-1024 ciphertext has the wrong length")
    return private.decapsulate(ciphertext)
