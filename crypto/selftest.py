"""Start-up check: every configured scheme must sign, verify and refuse before we serve.

The daemon calls `check_schemes(...)` first; on failure it prints the one-line
`SchemeCheckError` message and exits, rather than failing later on the first vote.
"""
from __future__ import annotations

from collections.abc import Iterable

from crypto import oqs_backend
from crypto.schemes import (
    KeyVerifier,
    Scheme,
    SeedSigner,
    kem_decapsulate,
    kem_encapsulate,
    kem_keypair,
    scheme_from_name,
)

_PROBE = b"QENEX/selftest"


class SchemeCheckError(RuntimeError):
    """A configured scheme does not work on this machine (message says what to do)."""


def _check_signature_scheme(scheme: Scheme) -> None:
    signer = SeedSigner(scheme, bytes(range(32)))
    signature = signer.sign(_PROBE)
    verifier = KeyVerifier(scheme, signer.public_key)
    if not verifier.verify(_PROBE, signature) or verifier.verify(_PROBE + b"!", signature):
        raise SchemeCheckError(f"{scheme.name} failed its sign/verify self-test; "
                               "reinstall cryptography>=47 and pynacl>=1.5")


def _check_kem() -> None:
    private, public = kem_keypair()
    shared, ciphertext = kem_encapsulate(public)
    if kem_decapsulate(private, ciphertext) != shared:
        raise SchemeCheckError("ML-KEM-1024 failed its self-test; reinstall cryptography>=47")


def check_schemes(signature_schemes: Iterable[str | int | Scheme] = ("ML_DSA_87",),
                  kem: bool = True, long_term: str | None = None) -> None:
    """Raise SchemeCheckError unless every named scheme works here."""
    for name in signature_schemes:
        try:
            scheme = scheme_from_name(name)
        except ValueError as exc:
            raise SchemeCheckError(f"config names {exc}") from None
        try:
            _check_signature_scheme(scheme)
        except (ImportError, AttributeError) as exc:
            raise SchemeCheckError(f"{scheme.name} is not available ({exc}); install "
                                   "cryptography>=47 (ML-DSA) and pynacl>=1.5") from None
    if kem:
        _check_kem()
    if long_term and long_term.upper().startswith(("SLH", "SPHINCS")):
        try:
            signer = oqs_backend.SlhDsaSigner(long_term)
        except oqs_backend.LongTermUnavailable as exc:
            raise SchemeCheckError(str(exc)) from None
        if signer.public_key is None or not oqs_backend.slh_dsa_verify(
                signer.public_key, _PROBE, signer.sign(_PROBE), signer.mechanism):
            raise SchemeCheckError(f"{long_term} failed its self-test in liboqs")
