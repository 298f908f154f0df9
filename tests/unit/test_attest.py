"""TPM quote over the node key's hash and a nonce, against a real swtpm."""
from __future__ import annotations

import os

import pytest

from crypto.attest import AttestationError, make_attestation, verify_attestation
from crypto.schemes import Scheme, SeedSigner

try:
    from crypto_fixtures import swtpm
except ImportError:
    from tests.unit.crypto_fixtures import swtpm  # noqa: F401

KEY = SeedSigner(Scheme.ML_DSA_87, b"n" * 32).public_key


def test_quote_verifies_and_binds_key_nonce_and_ak(swtpm):
    nonce = os.urandom(32)
    doc = make_attestation(swtpm, KEY, nonce)
    assert verify_attestation(doc, KEY, nonce) == "unpinned"
    ak = doc["ak_public_pem"].encode()
    assert verify_attestation(doc, KEY, nonce, trusted_ak_pem=ak) == "pinned"
    with pytest.raises(AttestationError, match="another key or another nonce"):
        verify_attestation(doc, KEY, os.urandom(32))
    other = SeedSigner(Scheme.ML_DSA_87, b"o" * 32).public_key
    with pytest.raises(AttestationError, match="another key"):
        verify_attestation(doc, other, nonce)
    tampered = dict(doc, attest=doc["attest"][:-2] + "00")
    with pytest.raises(AttestationError, match="signature"):
        verify_attestation(tampered, KEY, nonce)
    lying = dict(doc, pcr_values=["11" * 32] * len(doc["pcr_values"]))
    with pytest.raises(AttestationError, match="PCR"):
        verify_attestation(lying, KEY, nonce)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    stranger = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(AttestationError, match="do not trust"):
        verify_attestation(doc, KEY, nonce, trusted_ak_pem=stranger)
