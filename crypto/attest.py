"""TPM attestation of the node's identity key: a quote over H(public key) and a nonce.

    doc = make_attestation(tcti, public_key, nonce)      # JSON-able dict
    verify_attestation(doc, public_key, nonce, trusted_ak_pem)   # AttestationError if bad

The quote's qualifying data is SHA-256 of a domain-tagged (SHA-256(public key) | nonce),
so a quote proves "this TPM, in this PCR state, vouched for this key, after the caller
chose this nonce". Whether the attestation key (AK) belongs to a genuine TPM is a separate
question (EK certificate, credential activation) the verifier answers by pinning the AK
public key it trusts; without a pinned AK the check is only self-consistent, and
`verify_attestation` says so in its result.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from crypto import tpm
from crypto.schemes import tagged

FORMAT = "qenex-attestation/1"
NONCE_BYTES_MIN = 16
NONCE_BYTES_MAX = 64


class AttestationError(ValueError):
    """The attestation does not prove what it claims (one line: why)."""


def qualifying_data(public_key: bytes, nonce: bytes) -> bytes:
    body = hashlib.sha256(public_key).digest() + nonce
    return hashlib.sha256(tagged("QENEX/attest", "", "node-key", body)).digest()


def make_attestation(tcti: str, public_key: bytes, nonce: bytes,
                     pcrs: Sequence[int] = (0, 7)) -> dict[str, object]:
    if not NONCE_BYTES_MIN <= len(nonce) <= NONCE_BYTES_MAX:
        raise AttestationError(f"nonce must be {NONCE_BYTES_MIN}..{NONCE_BYTES_MAX} bytes")
    with tpm.open_tpm(tcti) as esapi:
        attest, signature, ak_pem = tpm.quote(esapi, qualifying_data(public_key, nonce), pcrs)
        values = tpm.pcr_values(esapi, pcrs)
    return {"format": FORMAT, "public_key_sha256": hashlib.sha256(public_key).hexdigest(),
            "nonce": nonce.hex(), "pcrs": list(pcrs), "pcr_values": [v.hex() for v in values],
            "attest": attest.hex(), "signature": signature.hex(), "ak_public_pem": ak_pem.decode()}


def verify_attestation(doc: dict[str, object], public_key: bytes, nonce: bytes,
                       trusted_ak_pem: bytes | None = None) -> str:
    """Raise AttestationError unless `doc` is a valid quote for this key and nonce.

    Returns "pinned" when the AK matched `trusted_ak_pem`, else "unpinned".
    """
    try:
        if doc["format"] != FORMAT:
            raise AttestationError(f"not a {FORMAT} document")
        attest = bytes.fromhex(str(doc["attest"]))
        signature = bytes.fromhex(str(doc["signature"]))
        ak_pem = str(doc["ak_public_pem"]).encode()
        values = [bytes.fromhex(v) for v in doc["pcr_values"]]  # type: ignore[union-attr]
    except (KeyError, ValueError, TypeError) as exc:
        raise AttestationError(f"malformed attestation ({exc})") from None
    if trusted_ak_pem is not None and _spki(trusted_ak_pem) != _spki(ak_pem):
        raise AttestationError("quote was signed by an attestation key we do not trust")
    key = serialization.load_pem_public_key(ak_pem)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise AttestationError("attestation key is not an ECDSA key")
    try:
        key.verify(signature, attest, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise AttestationError("quote signature does not verify") from None
    genuine, extra, pcr_digest = tpm.parse_quote(attest)
    if not genuine:
        raise AttestationError("signed data is not a TPM-generated quote")
    if extra != qualifying_data(public_key, nonce):
        raise AttestationError("quote is for another key or another nonce")
    if pcr_digest != hashlib.sha256(b"".join(values)).digest():
        raise AttestationError("reported PCR values do not match the quoted digest")
    return "pinned" if trusted_ak_pem is not None else "unpinned"


def _spki(pem: bytes) -> bytes:
    key = serialization.load_pem_public_key(pem)
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
