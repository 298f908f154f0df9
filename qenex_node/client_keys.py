"""Client account key files (what `qenex testnet` hands out and `qenex tx` reads).

JSON, mode 0600: {"format": "qenex-client-key", "version": 1, "scheme": "ED25519",
"seed": hex, "public_key": hex, "address": hex}. The seed is in the clear: these files are
for test networks and scripted clients; a validator's own key never uses this format (it
lives in crypto's key stores).
"""
from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from crypto.schemes import Scheme, generate_seed, public_key_from_seed
from ledger.account import address_of

CLIENT_KEY_FORMAT = "qenex-client-key"


class ClientKeyError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ClientKey:
    scheme: Scheme
    seed: bytes
    public_key: bytes
    address: bytes

    @classmethod
    def generate(cls, scheme: Scheme = Scheme.ED25519) -> ClientKey:
        return cls.from_seed(scheme, generate_seed())

    @classmethod
    def from_seed(cls, scheme: Scheme, seed: bytes) -> ClientKey:
        public_key = public_key_from_seed(scheme, seed)
        return cls(scheme, seed, public_key, address_of(int(scheme), public_key))

    def to_json(self) -> str:
        return json.dumps({"format": CLIENT_KEY_FORMAT, "version": 1, "scheme": self.scheme.name,
                           "seed": self.seed.hex(), "public_key": self.public_key.hex(),
                           "address": self.address.hex()}, indent=1, sort_keys=True)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self.to_json())


def load_client_key(path: str | Path) -> ClientKey:
    path = Path(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClientKeyError(f"key file {path} not found") from None
    except (OSError, ValueError) as exc:
        raise ClientKeyError(f"key file {path} is not a readable JSON key file: {exc}") from None
    if mode & 0o077:
        raise ClientKeyError(f"key file {path} is readable by others; run `chmod 600 {path}`")
    if not isinstance(doc, dict) or doc.get("format") != CLIENT_KEY_FORMAT:
        raise ClientKeyError(f"key file {path} is not a {CLIENT_KEY_FORMAT} file")
    try:
        key = ClientKey.from_seed(Scheme[str(doc["scheme"])], bytes.fromhex(str(doc["seed"])))
    except (KeyError, ValueError) as exc:
        raise ClientKeyError(f"key file {path}: bad scheme or seed ({exc})") from None
    if doc.get("address") and doc["address"] != key.address.hex():
        raise ClientKeyError(f"key file {path}: address does not match its seed")
    return key
