"""TPM 2.0 (real swtpm) and PKCS#11 (real SoftHSM2) key stores, and the TPM-anchored guard."""
from __future__ import annotations

import shutil

import pytest

from crypto import tpm
from crypto.errors import GuardError, KeyStoreError
from crypto.keystore import (
    Pkcs11KeyStoreConfig,
    TpmKeyStoreConfig,
    generate_node_key,
    load_node_key,
)
from crypto.signer import open_guard

try:
    from crypto_fixtures import TOKEN_PIN, softhsm, swtpm
except ImportError:  # tests/unit became a package
    from tests.unit.crypto_fixtures import TOKEN_PIN, softhsm, swtpm  # noqa: F401


def test_tpm_seal_unseal_and_pcr_binding(tmp_path, swtpm):
    plain = TpmKeyStoreConfig(path=tmp_path / "a.key", tcti=swtpm)
    made = generate_node_key(plain)
    assert load_node_key(plain).public_key == made.public_key
    bound = TpmKeyStoreConfig(path=tmp_path / "b.key", tcti=swtpm, pcrs=(16,))
    generate_node_key(bound)
    assert load_node_key(bound).public_key
    with tpm.open_tpm(swtpm) as esapi:  # change the measured state
        from tpm2_pytss import ESYS_TR
        esapi.pcr_event(ESYS_TR.PCR16, b"something else booted")
    with pytest.raises(KeyStoreError, match="PCR values changed"):
        load_node_key(bound)


def test_tpm_missing_is_one_clear_line(tmp_path):
    config = TpmKeyStoreConfig(path=tmp_path / "k", tcti="swtpm:host=127.0.0.1,port=9")
    with pytest.raises(KeyStoreError, match="no TPM reachable") as info:
        generate_node_key(config)
    assert "\n" not in str(info.value) and not (tmp_path / "k").exists()


def test_tpm_guard_detects_disk_rollback(tmp_path, swtpm):
    config = TpmKeyStoreConfig(path=tmp_path / "k", tcti=swtpm, guard_nv_index=0x01500A10)
    node = generate_node_key(config)
    guard = open_guard(tmp_path / "guard", node, config)
    guard.sign(("hotstuff.vote", 1), b"one", node.sign)
    guard.close()
    shutil.copy(tmp_path / "guard", tmp_path / "old-copy")
    guard = open_guard(tmp_path / "guard", node, config)
    guard.sign(("hotstuff.vote", 2), b"two", node.sign)
    guard.close()
    shutil.copy(tmp_path / "old-copy", tmp_path / "guard")  # restore an old backup
    with pytest.raises(GuardError, match="older than the TPM counter"):
        open_guard(tmp_path / "guard", node, config)
    (tmp_path / "guard").unlink()
    with pytest.raises(GuardError, match="missing"):
        open_guard(tmp_path / "guard", node, config)


def test_pkcs11_wrap_unwrap_and_wrong_pin(tmp_path, softhsm, monkeypatch):
    module, label = softhsm
    monkeypatch.setenv("T_PIN", TOKEN_PIN)
    config = Pkcs11KeyStoreConfig(path=tmp_path / "k", module=module, token_label=label,
                                  pin_env="T_PIN")
    made = generate_node_key(config)
    assert load_node_key(config).public_key == made.public_key
    import pkcs11
    with pkcs11.lib(module).get_token(token_label=label).open(user_pin=TOKEN_PIN) as s:
        key = s.get_key(label=config.key_label)
        assert key[pkcs11.Attribute.EXTRACTABLE] is False
    monkeypatch.setenv("T_PIN", "0000")
    with pytest.raises(KeyStoreError, match="wrong PIN"):
        load_node_key(config)


def test_pkcs11_missing_token_or_module(tmp_path, softhsm, monkeypatch):
    module, _ = softhsm
    monkeypatch.setenv("T_PIN", TOKEN_PIN)
    with pytest.raises(KeyStoreError, match="no single PKCS#11 token"):
        generate_node_key(Pkcs11KeyStoreConfig(path=tmp_path / "k", module=module,
                                               token_label="absent", pin_env="T_PIN"))
    with pytest.raises(KeyStoreError, match="not found"):
        generate_node_key(Pkcs11KeyStoreConfig(path=tmp_path / "k", module="/nope.so",
                                               pin_env="T_PIN"))
