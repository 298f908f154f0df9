"""The `tpm` key store: the seed sealed by a TPM 2.0 (see crypto.tpm for the why)."""
from __future__ import annotations

from crypto import tpm
from crypto.errors import KeyStoreError
from crypto.keystore import KeyInfo, TpmKeyStoreConfig, hex_field


def protect(config: TpmKeyStoreConfig, seed: bytes, record: dict[str, object]) -> dict[str, object]:
    with tpm.open_tpm(config.tcti) as esapi:
        try:
            public, private = tpm.seal(esapi, seed, config.pcrs)
        except tpm.tss_error() as exc:
            raise KeyStoreError(f"the TPM at {config.tcti} refused to seal the key ({exc}); "
                                "check the owner hierarchy is usable") from None
    return {"sealed_public": public.hex(), "sealed_private": private.hex(),
            "pcrs": list(config.pcrs)}


def recover(config: TpmKeyStoreConfig, record: dict[str, object], info: KeyInfo) -> bytes:
    public = hex_field(record, "sealed_public", info.path)
    private = hex_field(record, "sealed_private", info.path)
    pcrs = tuple(int(p) for p in record.get("pcrs", ()))  # type: ignore[union-attr]
    if pcrs != tuple(config.pcrs):
        raise KeyStoreError(f"key file {info.path} is sealed to PCRs {list(pcrs)} but the "
                            f"config says {list(config.pcrs)}; fix keystore.pcrs")
    with tpm.open_tpm(config.tcti) as esapi:
        try:
            return tpm.unseal(esapi, public, private, pcrs)
        except tpm.tss_error() as exc:
            hint = ("the PCR values changed since sealing (boot state differs); re-seal "
                    "with `qenex keys generate` on a trusted boot") if "policy" in str(exc) \
                else "is this the TPM that sealed it, and is the key file intact?"
            raise KeyStoreError(f"the TPM at {config.tcti} cannot unseal {info.path} "
                                f"({exc}); {hint}") from None
        except ValueError as exc:
            raise KeyStoreError(f"key file {info.path} is corrupt ({exc}); restore it from "
                                "backup") from None
