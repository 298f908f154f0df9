"""Optional SLH-DSA (SPHINCS+, FIPS 205) for long-term signatures (genesis, checkpoints).

Why the care: liboqs-python's `import oqs` clones and builds liboqs from the network when
no liboqs shared library is installed (and that fails offline, slowly). So we look for the
library first, without importing `oqs`, and import it only when a library is present.
Neither Debian nor PyPI ships liboqs here, so this backend is usually absent; every caller
must be ready for `LongTermUnavailable`.
"""
from __future__ import annotations

import ctypes.util
import os
from pathlib import Path

SLH_DSA_DEFAULT = "SLH_DSA_PURE_SHA2_128S"  # liboqs mechanism name (0.12+)
_SLH_DSA_ALIASES = ("SLH_DSA_PURE_SHA2_128S", "SPHINCS+-SHA2-128s-simple")


class LongTermUnavailable(RuntimeError):
    """SLH-DSA was asked for but liboqs is not installed."""


def liboqs_library_path() -> str | None:
    """Where a liboqs shared library is, or None; never imports `oqs`."""
    candidates = []
    install = os.environ.get("OQS_INSTALL_PATH")
    if install:
        candidates += [Path(install) / "lib" / "liboqs.so", Path(install) / "lib64" / "liboqs.so"]
    candidates.append(Path.home() / "_oqs" / "lib" / "liboqs.so")  # liboqs-python's default
    for path in candidates:
        if path.exists():
            return str(path)
    return ctypes.util.find_library("oqs")


def liboqs_available() -> bool:
    return liboqs_library_path() is not None


def _oqs():  # type: ignore[no-untyped-def]
    if not liboqs_available():
        raise LongTermUnavailable(
            "SLH-DSA needs the liboqs shared library, which is not installed; install "
            "liboqs (and `pip install .[oqs]`) or configure a long-term scheme of ML_DSA_87")
    import oqs
    return oqs


def _mechanism(oqs, name: str) -> str:  # type: ignore[no-untyped-def]
    enabled = set(oqs.get_enabled_sig_mechanisms())
    for candidate in (name, *_SLH_DSA_ALIASES):
        if candidate in enabled:
            return candidate
    raise LongTermUnavailable(f"liboqs has no {name} mechanism enabled")


class SlhDsaSigner:
    """An SLH-DSA key pair generated inside liboqs (its secret is the full private key)."""

    def __init__(self, name: str = SLH_DSA_DEFAULT, secret_key: bytes | None = None) -> None:
        oqs = _oqs()
        self.mechanism = _mechanism(oqs, name)
        self._sig = oqs.Signature(self.mechanism, secret_key)
        self.public_key = self._sig.generate_keypair() if secret_key is None else None

    def sign(self, message: bytes) -> bytes:
        return bytes(self._sig.sign(message))


def slh_dsa_verify(public_key: bytes, message: bytes, signature: bytes,
                   name: str = SLH_DSA_DEFAULT) -> bool:
    oqs = _oqs()
    with oqs.Signature(_mechanism(oqs, name)) as verifier:
        return bool(verifier.verify(message, signature, public_key))
