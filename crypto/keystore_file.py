"""The `file` key store: seed encrypted with AES-256-GCM under scrypt(passphrase).

The associated data binds the ciphertext to the key file's scheme and public key, so a
file edited to claim another key fails to decrypt rather than loading a wrong identity.
"""
from __future__ import annotations

import getpass
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from consensus import canonical
from crypto.errors import KeyStoreError
from crypto.keystore import FileKeyStoreConfig, KeyInfo, hex_field

SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
NONCE_BYTES = 12
PASSPHRASE_BYTES_MAX = 1024


def passphrase(config: FileKeyStoreConfig) -> bytes:
    """From the passphrase file, else the environment variable, else a prompt if allowed."""
    if config.passphrase_file is not None:
        try:
            text = Path(config.passphrase_file).read_bytes()[:PASSPHRASE_BYTES_MAX]
        except OSError as exc:
            raise KeyStoreError(f"cannot read passphrase file {config.passphrase_file} "
                                f"({exc.strerror}); fix keystore.passphrase_file") from None
        return text.rstrip(b"\r\n")
    if config.passphrase_env and os.environ.get(config.passphrase_env):
        return os.environ[config.passphrase_env].encode()
    if config.prompt:
        return getpass.getpass(f"passphrase for {config.path}: ").encode()
    raise KeyStoreError(f"no passphrase for key file {config.path}; set "
                        f"{config.passphrase_env or 'a passphrase env var'} or "
                        "keystore.passphrase_file")


def _aad(scheme_name: str, public_key_hex: str) -> bytes:
    return canonical.encode((b"QENEX/keyfile", scheme_name, bytes.fromhex(public_key_hex)))


def _kek(secret: bytes, salt: bytes, cost_log2: int) -> bytes:
    if not 10 <= cost_log2 <= 22:
        raise KeyStoreError(f"scrypt cost 2**{cost_log2} is out of range; key file corrupt?")
    return Scrypt(salt=salt, length=32, n=2 ** cost_log2, r=SCRYPT_R, p=SCRYPT_P).derive(secret)


def protect(config: FileKeyStoreConfig, seed: bytes, record: dict[str, object]) -> dict[str, object]:
    secret = passphrase(config)
    if len(secret) < 8:
        raise KeyStoreError("passphrase is shorter than 8 characters; choose a longer one")
    salt, nonce = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES)
    key = _kek(secret, salt, config.scrypt_cost_log2)
    aad = _aad(str(record["scheme"]), str(record["public_key"]))
    return {"kdf": "scrypt", "scrypt_cost_log2": config.scrypt_cost_log2, "salt": salt.hex(),
            "nonce": nonce.hex(), "ciphertext": AESGCM(key).encrypt(nonce, seed, aad).hex()}


def recover(config: FileKeyStoreConfig, record: dict[str, object], info: KeyInfo) -> bytes:
    path = info.path
    salt = hex_field(record, "salt", path)
    nonce = hex_field(record, "nonce", path)
    ciphertext = hex_field(record, "ciphertext", path)
    cost = record.get("scrypt_cost_log2")
    if record.get("kdf") != "scrypt" or not isinstance(cost, int) or len(nonce) != NONCE_BYTES:
        raise KeyStoreError(f"key file {path} is corrupt (kdf parameters); restore it from "
                            "backup")
    key = _kek(passphrase(config), salt, cost)
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, _aad(info.scheme.name,
                                                           info.public_key.hex()))
    except InvalidTag:
        raise KeyStoreError(f"wrong passphrase for key file {path} (or the file was "
                            "altered); check the passphrase source and try again") from None
