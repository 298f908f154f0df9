"""The `pkcs11` key store: the seed wrapped by an AES-256 key that never leaves the token.

SoftHSM 2.6 (and most HSMs) have no ML-DSA, so the token cannot sign for us; what it can
do is keep a non-extractable wrapping key. At generation the seed enters the token as a
session-only secret object and is wrapped (CKM_AES_KEY_WRAP, RFC 3394: integrity-checked)
by that key; at start-up the blob is unwrapped into a session object whose value we read
once. The wrapping key is created on first use with CKA_EXTRACTABLE false and
CKA_SENSITIVE true, so nobody (including us) can read it out.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from crypto.errors import KeyStoreError
from crypto.keystore import KeyInfo, Pkcs11KeyStoreConfig, hex_field


def _p11():  # type: ignore[no-untyped-def]
    try:
        import pkcs11
    except ImportError:
        raise KeyStoreError("python-pkcs11 is not installed; run `pip install "
                            "'qenex-node[hsm]'`") from None
    return pkcs11


@contextlib.contextmanager
def _session(config: Pkcs11KeyStoreConfig) -> Iterator[object]:
    p11 = _p11()
    if not os.path.exists(config.module):
        raise KeyStoreError(f"PKCS#11 module {config.module} not found; install it (e.g. "
                            "softhsm2) or fix keystore.module")
    pin = os.environ.get(config.pin_env)
    if not pin:
        raise KeyStoreError(f"no PIN for token {config.token_label!r}; set {config.pin_env}")
    try:
        token = p11.lib(config.module).get_token(token_label=config.token_label)
    except (p11.NoSuchToken, p11.MultipleTokensReturned):
        raise KeyStoreError(f"no single PKCS#11 token labelled {config.token_label!r} in "
                            f"{config.module}; plug it in or fix keystore.token_label") from None
    try:
        session = token.open(rw=True, user_pin=pin)
    except (p11.PinIncorrect, p11.PinLenRange):
        raise KeyStoreError(f"wrong PIN for token {config.token_label!r}; check "
                            f"{config.pin_env} (repeated failures may lock the token)") from None
    except p11.PinLocked:
        raise KeyStoreError(f"token {config.token_label!r} PIN is locked; reset it with the "
                            "SO PIN") from None
    with session:
        yield session


def _wrapping_key(session, config: Pkcs11KeyStoreConfig, create: bool):  # type: ignore[no-untyped-def]
    p11 = _p11()
    attr = p11.Attribute
    try:
        return session.get_key(p11.ObjectClass.SECRET_KEY, p11.KeyType.AES,
                               label=config.key_label)
    except p11.NoSuchKey:
        if not create:
            raise KeyStoreError(f"wrapping key {config.key_label!r} is not in token "
                                f"{config.token_label!r}; wrong token?") from None
    except p11.MultipleObjectsReturned:
        raise KeyStoreError(f"several keys labelled {config.key_label!r} in token "
                            f"{config.token_label!r}; remove the duplicates") from None
    return session.generate_key(p11.KeyType.AES, 256, label=config.key_label, store=True,
                                template={attr.EXTRACTABLE: False, attr.SENSITIVE: True,
                                          attr.WRAP: True, attr.UNWRAP: True,
                                          attr.ENCRYPT: False, attr.DECRYPT: False})


def protect(config: Pkcs11KeyStoreConfig, seed: bytes, record: dict[str, object]) -> dict[str, object]:
    p11 = _p11()
    attr = p11.Attribute
    with _session(config) as session:
        wrapper = _wrapping_key(session, config, create=True)
        secret = session.create_object({
            attr.CLASS: p11.ObjectClass.SECRET_KEY, attr.KEY_TYPE: p11.KeyType.GENERIC_SECRET,
            attr.VALUE: seed, attr.TOKEN: False, attr.EXTRACTABLE: True, attr.SENSITIVE: False})
        try:
            wrapped = wrapper.wrap_key(secret, mechanism=p11.Mechanism.AES_KEY_WRAP)
        finally:
            secret.destroy()
    return {"token_label": config.token_label, "key_label": config.key_label,
            "wrapped_seed": bytes(wrapped).hex()}


def recover(config: Pkcs11KeyStoreConfig, record: dict[str, object], info: KeyInfo) -> bytes:
    p11 = _p11()
    attr = p11.Attribute
    wrapped = hex_field(record, "wrapped_seed", info.path)
    with _session(config) as session:
        wrapper = _wrapping_key(session, config, create=False)
        try:
            secret = wrapper.unwrap_key(
                p11.ObjectClass.SECRET_KEY, p11.KeyType.GENERIC_SECRET, wrapped,
                mechanism=p11.Mechanism.AES_KEY_WRAP, store=False,
                template={attr.EXTRACTABLE: True, attr.SENSITIVE: False})
        except p11.PKCS11Error as exc:
            raise KeyStoreError(f"token {config.token_label!r} cannot unwrap {info.path} "
                                f"({type(exc).__name__}); wrong token or corrupt key file"
                                ) from None
        try:
            return bytes(secret[attr.VALUE])
        finally:
            secret.destroy()
