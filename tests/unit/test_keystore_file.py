"""The passphrase-encrypted file key store."""
from __future__ import annotations

import json
import os

import pytest

from crypto.errors import KeyStoreError
from crypto.keystore import FileKeyStoreConfig, generate_node_key, load_node_key, read_public_info
from crypto.schemes import Scheme, verify


def _config(tmp_path, **kw):
    return FileKeyStoreConfig(path=tmp_path / "node.key", passphrase_env="T_PASS",
                              scrypt_cost_log2=10, **kw)


@pytest.fixture(autouse=True)
def passphrase(monkeypatch):
    monkeypatch.setenv("T_PASS", "correct horse battery")


def test_generate_load_sign(tmp_path):
    made = generate_node_key(_config(tmp_path))
    loaded = load_node_key(_config(tmp_path))
    assert loaded.public_key == made.public_key and loaded.scheme == Scheme.ML_DSA_87
    assert verify(Scheme.ML_DSA_87, loaded.public_key, b"m", loaded.sign(b"m"))
    raw = (tmp_path / "node.key").read_bytes()
    assert os.stat(tmp_path / "node.key").st_mode & 0o777 == 0o600
    assert read_public_info(tmp_path / "node.key").public_key == made.public_key
    assert b"seed" not in raw


def test_passphrase_file_and_ed25519(tmp_path):
    secret = tmp_path / "pass"
    secret.write_text("from a file, not env\n")
    config = FileKeyStoreConfig(path=tmp_path / "k", passphrase_env=None,
                                passphrase_file=secret, scrypt_cost_log2=10)
    made = generate_node_key(config, Scheme.ED25519)
    assert load_node_key(config).public_key == made.public_key


def test_wrong_passphrase_one_clear_line(tmp_path, monkeypatch):
    generate_node_key(_config(tmp_path))
    monkeypatch.setenv("T_PASS", "wrong passphrase!")
    with pytest.raises(KeyStoreError, match="wrong passphrase") as info:
        load_node_key(_config(tmp_path))
    assert "\n" not in str(info.value)


def test_refuses_overwrite_missing_mode_and_corrupt(tmp_path):
    path = tmp_path / "node.key"
    with pytest.raises(KeyStoreError, match="not found"):
        load_node_key(_config(tmp_path))
    generate_node_key(_config(tmp_path))
    before = path.read_bytes()
    with pytest.raises(KeyStoreError, match="already exists"):
        generate_node_key(_config(tmp_path))
    assert path.read_bytes() == before
    os.chmod(path, 0o644)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        load_node_key(_config(tmp_path))
    os.chmod(path, 0o600)
    path.write_bytes(before[:40])
    with pytest.raises(KeyStoreError, match="corrupt"):
        load_node_key(_config(tmp_path))


def test_swapped_public_key_is_detected(tmp_path):
    generate_node_key(_config(tmp_path))
    record = json.loads((tmp_path / "node.key").read_text())
    record["public_key"] = "00" * 2592
    (tmp_path / "node.key").write_text(json.dumps(record))
    with pytest.raises(KeyStoreError):
        load_node_key(_config(tmp_path))


def test_no_passphrase_source(tmp_path, monkeypatch):
    monkeypatch.delenv("T_PASS")
    with pytest.raises(KeyStoreError, match="no passphrase"):
        generate_node_key(_config(tmp_path))
