"""Schemes, domain tags, start-up self-test, consensus signer/verifier, pool, stand-in."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest

from consensus import canonical
from consensus.types import Validator, ValidatorSet, signing_bytes
from crypto import oqs_backend
from crypto.errors import DoubleSignRefused
from crypto.guard import SignGuard
from crypto.keystore import KeyInfo, NodeSigner
from crypto.pool import VerificationPool
from crypto.schemes import (
    KeyVerifier,
    Scheme,
    SeedSigner,
    public_key_from_seed,
    sign_with_seed,
    tagged,
    verify,
)
from crypto.selftest import SchemeCheckError, check_schemes
from crypto.signer import ConsensusSigner, ValidatorVerifier
from crypto.simulated import SimulatedSigner, SimulatedVerifier


@canonical.register("test.vote.v1")
@dataclass(frozen=True, slots=True)
class Vote:
    view: int
    block: bytes

    def sign_position(self):
        return ("hotstuff.vote", self.view)


@pytest.mark.parametrize("scheme", list(Scheme))
def test_every_scheme_signs_and_refuses(scheme):
    signer = SeedSigner(scheme, bytes(range(32)))
    assert signer.public_key == public_key_from_seed(scheme, bytes(range(32)))
    signature = signer.sign(b"m")
    assert KeyVerifier(scheme, signer.public_key).verify(b"m", signature)
    assert verify(scheme, signer.public_key, b"m", sign_with_seed(scheme, bytes(range(32)), b"m"))
    assert not KeyVerifier(scheme, signer.public_key).verify(b"n", signature)
    assert not verify(scheme, signer.public_key, b"m", signature[:-1])


def test_domain_tag_separates_chain_kind_version():
    signer = SeedSigner(Scheme.ML_DSA_87, bytes(32))
    verifier = KeyVerifier(Scheme.ML_DSA_87, signer.public_key)
    signature = signer.sign(tagged("QENEX/x", "chain-a", "genesis", b"body"))
    assert verifier.verify(tagged("QENEX/x", "chain-a", "genesis", b"body"), signature)
    for other in (tagged("QENEX/x", "chain-b", "genesis", b"body"),
                  tagged("QENEX/x", "chain-a", "checkpoint", b"body"),
                  tagged("QENEX/x", "chain-a", "genesis", b"body", version=2)):
        assert not verifier.verify(other, signature)
    vote = Vote(1, b"h")
    assert signing_bytes("a", vote) != signing_bytes("b", vote)


def test_selftest_and_liboqs_detection_without_import():
    check_schemes(["ML_DSA_87", "ED25519", "ml-dsa-44"])
    with pytest.raises(SchemeCheckError, match="unknown signature scheme"):
        check_schemes(["RSA_2048"])
    code = ("import sys; from crypto import oqs_backend; oqs_backend.liboqs_available(); "
            "print('oqs' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
    if not oqs_backend.liboqs_available():
        with pytest.raises(SchemeCheckError, match="liboqs"):
            check_schemes(long_term="SLH_DSA_PURE_SHA2_128S")


def _validators(signers):
    return ValidatorSet(tuple(Validator(i, s.public_key) for i, s in enumerate(signers)))


def test_consensus_signer_guard_and_validator_verifier(tmp_path):
    seeds = [bytes([i]) * 32 for i in range(3)]
    nodes = [NodeSigner(KeyInfo(Scheme.ML_DSA_87, public_key_from_seed(Scheme.ML_DSA_87, s),
                                "test", tmp_path), s) for s in seeds]
    signer = ConsensusSigner("chain", nodes[1], SignGuard(tmp_path / "g", nodes[1].public_key))
    verifier = ValidatorVerifier("chain", _validators(nodes), cache_entries_max=2)
    signature = signer.sign(Vote(7, b"x"))
    assert signer.sign(Vote(7, b"x")) == signature  # same bytes: stored signature
    with pytest.raises(DoubleSignRefused):
        signer.sign(Vote(7, b"y"))
    assert verifier.verify(1, Vote(7, b"x"), signature)
    assert verifier.verify(1, Vote(7, b"x"), signature) and verifier.checks == 1  # cached
    assert not verifier.verify(0, Vote(7, b"x"), signature)
    assert not verifier.verify(5, Vote(7, b"x"), signature)
    assert not ValidatorVerifier("other", _validators(nodes)).verify(1, Vote(7, b"x"), signature)
    for view in range(8, 12):
        verifier.verify(1, Vote(view, b"x"), b"bad")
    assert len(verifier._cache) == 2


def test_simulated_stand_in_matches_simulator_and_shape():
    signer = SimulatedSigner(seed=3, node_id=1, chain_id="c")
    verifier = SimulatedVerifier(seed=3, nodes=4, chain_id="c")
    assert verifier.verify(1, Vote(1, b"x"), signer.sign(Vote(1, b"x")))
    assert not verifier.verify(2, Vote(1, b"x"), signer.sign(Vote(1, b"x")))
    assert signer.signed(Vote(1, b"x"))[0] == signing_bytes("c", Vote(1, b"x"))
    assert SimulatedSigner(seed=4, node_id=1, chain_id="c").sign(Vote(1, b"x")) != \
        signer.sign(Vote(1, b"x"))  # another run's seed gives other keys


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_pool_verifies_in_order(kind):
    signer = SeedSigner(Scheme.ED25519, bytes(32))
    good = (int(Scheme.ED25519), signer.public_key, b"m", signer.sign(b"m"))
    bad = (int(Scheme.ED25519), signer.public_key, b"n", signer.sign(b"m"))
    junk = (99, b"", b"", b"")
    with VerificationPool(workers=2, kind=kind) as pool:
        assert pool.verify_batch([good, bad, junk, good, good]) == [True, False, False, True, True]
        assert pool.verify_batch([]) == []
