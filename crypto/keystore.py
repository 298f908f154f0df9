"""Node key custody: the 32-byte seed of the node's identity key never lies on disk in
plaintext. One key file (JSON, mode 0600) per node records the scheme, the public key and
the store's protected form of the seed:

  file    seed encrypted with AES-256-GCM under a scrypt key from a passphrase
          (prompt, environment variable or passphrase file);
  tpm     seed sealed by a TPM 2.0 under its storage hierarchy, optionally bound to PCRs;
  pkcs11  seed wrapped (AES key wrap, RFC 3394) by a non-extractable AES-256 key that
          lives in a PKCS#11 token.

    generate_node_key(config, scheme=Scheme.ML_DSA_87) -> NodeSigner   (refuses to overwrite)
    load_node_key(config) -> NodeSigner                                (at start-up)
    read_public_info(path) -> KeyInfo                                  (no secret needed)

Every failure is a `KeyStoreError` whose message is one line saying what to do.
"""
from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from crypto.errors import KeyStoreError
from crypto.schemes import Scheme, SeedSigner, address_of, public_key_from_seed

KEY_FORMAT = "qenex-node-key"
KEY_FORMAT_VERSION = 1
KEY_FILE_BYTES_MAX = 64 * 1024


@dataclass(frozen=True, slots=True)
class FileKeyStoreConfig:
    path: Path
    passphrase_env: str | None = "QENEX_KEY_PASSPHRASE"
    passphrase_file: Path | None = None
    prompt: bool = False  # ask on the terminal when neither env nor file gives one
    scrypt_cost_log2: int = 15  # N = 2**15: ~100 ms, 32 MiB; tests lower it
    store: str = "file"


@dataclass(frozen=True, slots=True)
class TpmKeyStoreConfig:
    path: Path  # the key file holding the sealed blobs
    tcti: str = "device:/dev/tpmrm0"  # or "swtpm:host=127.0.0.1,port=2321"
    pcrs: tuple[int, ...] = ()  # sha256 PCRs the seed is bound to (empty = not bound)
    guard_nv_index: int | None = 0x01500A00  # NV counter that anchors the sign guard
    store: str = "tpm"


@dataclass(frozen=True, slots=True)
class Pkcs11KeyStoreConfig:
    path: Path  # the key file holding the wrapped seed
    module: str = "/usr/lib/softhsm/libsofthsm2.so"
    token_label: str = "qenex"
    pin_env: str = "QENEX_PKCS11_PIN"
    key_label: str = "qenex-node-wrap"
    store: str = "pkcs11"


KeyStoreConfig = FileKeyStoreConfig | TpmKeyStoreConfig | Pkcs11KeyStoreConfig


@dataclass(frozen=True, slots=True)
class KeyInfo:
    scheme: Scheme
    public_key: bytes
    store: str
    path: Path

    @property
    def address(self) -> str:
        return address_of(self.public_key, int(self.scheme))


class NodeSigner:
    """The node's identity: scheme, public key, and `sign(message_bytes) -> signature`."""

    __slots__ = ("_signer", "info")

    def __init__(self, info: KeyInfo, seed: bytes) -> None:
        self._signer = SeedSigner(info.scheme, seed)
        if self._signer.public_key != info.public_key:
            raise KeyStoreError(f"key file {info.path} does not match its secret (corrupt or "
                                "swapped blob); restore the key file from backup")
        self.info = info

    @property
    def scheme(self) -> Scheme:
        return self.info.scheme

    @property
    def public_key(self) -> bytes:
        return self.info.public_key

    @property
    def address(self) -> str:
        return self.info.address

    def sign(self, message: bytes) -> bytes:
        return self._signer.sign(message)

    def __repr__(self) -> str:
        return f"NodeSigner({self.scheme.name}, {self.info.store}, address={self.address})"


# ------------------------------------------------------------ key file I/O
def write_key_file(path: Path, record: dict[str, object]) -> None:
    """Create `path` (mode 0600) with `record`; never overwrites, synced before return."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(record, indent=1, sort_keys=True).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyStoreError(f"key file {path} already exists; refusing to overwrite it "
                            "(move it away first if you really mean to replace the key)"
                            ) from None
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def base_record(store: str, scheme: Scheme, public_key: bytes) -> dict[str, object]:
    return {"format": KEY_FORMAT, "version": KEY_FORMAT_VERSION, "store": store,
            "scheme": scheme.name, "public_key": public_key.hex()}


def read_key_file(path: Path) -> tuple[KeyInfo, dict[str, object]]:
    """Parse and check a key file: existence, mode 0600, format; no secret is touched."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyStoreError(f"key file {path} not found; create it with `qenex keys "
                            "generate` or fix keystore.path in the node config") from None
    if stat.S_IMODE(mode) & 0o077:
        raise KeyStoreError(f"key file {path} is readable by others (mode "
                            f"{stat.S_IMODE(mode):o}); run `chmod 600 {path}`")
    raw = path.read_bytes()[:KEY_FILE_BYTES_MAX + 1]
    try:
        record = json.loads(raw)
        if record["format"] != KEY_FORMAT or record["version"] != KEY_FORMAT_VERSION:
            raise ValueError("unknown format or version")
        scheme = Scheme[record["scheme"]]
        info = KeyInfo(scheme, bytes.fromhex(record["public_key"]), str(record["store"]), path)
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyStoreError(f"key file {path} is corrupt ({type(exc).__name__}: {exc}); "
                            "restore it from backup") from None
    return info, record


def read_public_info(path: Path) -> KeyInfo:
    return read_key_file(path)[0]


def hex_field(record: dict[str, object], name: str, path: Path) -> bytes:
    try:
        return bytes.fromhex(str(record[name]))
    except (KeyError, ValueError):
        raise KeyStoreError(f"key file {path} is corrupt (field {name!r}); restore it from "
                            "backup") from None


# ------------------------------------------------------------ dispatch
def _backend(config: KeyStoreConfig):  # type: ignore[no-untyped-def]
    # Imported lazily: the tpm and pkcs11 stores need optional packages.
    if isinstance(config, FileKeyStoreConfig):
        from crypto import keystore_file as backend
    elif isinstance(config, TpmKeyStoreConfig):
        from crypto import keystore_tpm as backend
    elif isinstance(config, Pkcs11KeyStoreConfig):
        from crypto import keystore_pkcs11 as backend
    else:
        raise KeyStoreError(f"unknown key store config {type(config).__name__}")
    return backend


def generate_node_key(config: KeyStoreConfig, scheme: Scheme = Scheme.ML_DSA_87) -> NodeSigner:
    """Make a fresh seed, protect it in the configured store, write the key file."""
    if Path(config.path).exists():
        raise KeyStoreError(f"key file {config.path} already exists; refusing to overwrite "
                            "it (move it away first if you really mean to replace the key)")
    seed = os.urandom(32)
    public_key = public_key_from_seed(scheme, seed)
    record = base_record(config.store, scheme, public_key)
    record.update(_backend(config).protect(config, seed, record))
    write_key_file(Path(config.path), record)
    return NodeSigner(KeyInfo(scheme, public_key, config.store, Path(config.path)), seed)


def load_node_key(config: KeyStoreConfig) -> NodeSigner:
    """Recover the seed from the configured store into memory; KeyStoreError otherwise."""
    info, record = read_key_file(Path(config.path))
    if info.store != config.store:
        raise KeyStoreError(f"key file {config.path} belongs to the {info.store!r} store but "
                            f"the config says {config.store!r}; fix keystore.kind")
    seed = _backend(config).recover(config, record, info)
    return NodeSigner(info, seed)


def keystore_config(section: dict[str, object]) -> KeyStoreConfig:
    """Build a store config from the node YAML's `keystore:` mapping (kind + fields)."""
    fields = dict(section)
    kind = fields.pop("kind", "file")
    classes = {"file": FileKeyStoreConfig, "tpm": TpmKeyStoreConfig,
               "pkcs11": Pkcs11KeyStoreConfig}
    if kind not in classes:
        raise KeyStoreError(f"keystore.kind {kind!r} is not one of file, tpm, pkcs11")
    if "path" not in fields:
        raise KeyStoreError("keystore.path is missing from the node config")
    fields["path"] = Path(str(fields["path"]))
    if fields.get("passphrase_file"):
        fields["passphrase_file"] = Path(str(fields["passphrase_file"]))
    if "pcrs" in fields:
        fields["pcrs"] = tuple(int(p) for p in fields["pcrs"])  # type: ignore[union-attr]
    try:
        return classes[kind](**fields)  # type: ignore[arg-type]
    except TypeError as exc:
        raise KeyStoreError(f"keystore section for {kind!r}: {exc}") from None
