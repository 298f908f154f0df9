"""`qenex keys ...` and `qenex bench crypto`: key custody and crypto throughput."""
from __future__ import annotations

import json
import os
from pathlib import Path

import click

from crypto.errors import KeyStoreError
from crypto.keystore import (
    FileKeyStoreConfig,
    KeyStoreConfig,
    Pkcs11KeyStoreConfig,
    TpmKeyStoreConfig,
    generate_node_key,
    read_public_info,
)
from crypto.schemes import scheme_from_name

DEFAULT_TCTI = os.environ.get("QENEX_TPM_TCTI", "device:/dev/tpmrm0")


def _store_config(keystore: str, path: Path, opts: dict[str, object]) -> KeyStoreConfig:
    if keystore == "file":
        return FileKeyStoreConfig(path=path, passphrase_env=opts["passphrase_env"],  # type: ignore[arg-type]
                                  passphrase_file=opts["passphrase_file"], prompt=True)  # type: ignore[arg-type]
    if keystore == "tpm":
        return TpmKeyStoreConfig(path=path, tcti=str(opts["tcti"]),
                                 pcrs=tuple(opts["pcr"]))  # type: ignore[arg-type]
    return Pkcs11KeyStoreConfig(path=path, module=str(opts["module"]),
                                token_label=str(opts["token_label"]),
                                pin_env=str(opts["pin_env"]), key_label=str(opts["key_label"]))


@click.group(name="keys")
def keys() -> None:
    """Create, inspect and attest the node's post-quantum identity key."""


@keys.command()
@click.option("--keystore", type=click.Choice(["file", "tpm", "pkcs11"]), default="file",
              show_default=True)
@click.option("--path", type=click.Path(path_type=Path), required=True, help="key file")
@click.option("--scheme", default="ML_DSA_87", show_default=True)
@click.option("--passphrase-env", default="QENEX_KEY_PASSPHRASE", show_default=True)
@click.option("--passphrase-file", type=click.Path(path_type=Path), default=None)
@click.option("--tcti", default=DEFAULT_TCTI, show_default=True)
@click.option("--pcr", type=int, multiple=True, help="bind the sealed seed to these PCRs")
@click.option("--module", default="/usr/lib/softhsm/libsofthsm2.so", show_default=True)
@click.option("--token-label", default="qenex", show_default=True)
@click.option("--pin-env", default="QENEX_PKCS11_PIN", show_default=True)
@click.option("--key-label", default="qenex-node-wrap", show_default=True)
def generate(keystore: str, path: Path, scheme: str, **opts: object) -> None:
    """Generate a node key; its seed is kept only in the chosen store."""
    try:
        signer = generate_node_key(_store_config(keystore, path, opts), scheme_from_name(scheme))
    except (KeyStoreError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(_describe(signer.info), indent=1))


def _describe(info) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {"scheme": info.scheme.name, "store": info.store, "address": info.address,
            "public_key": info.public_key.hex(), "path": str(info.path)}


@keys.command()
@click.option("--path", type=click.Path(path_type=Path), required=True)
def show(path: Path) -> None:
    """Public key, address, scheme and store (no secret is read)."""
    try:
        click.echo(json.dumps(_describe(read_public_info(path)), indent=1))
    except KeyStoreError as exc:
        raise click.ClickException(str(exc)) from None


@keys.command()
@click.option("--path", type=click.Path(path_type=Path), required=True)
@click.option("--nonce", required=True, help="hex nonce chosen by the verifier (16-64 B)")
@click.option("--tcti", default=DEFAULT_TCTI, show_default=True)
@click.option("--pcr", type=int, multiple=True, default=(0, 7), show_default=True)
def attest(path: Path, nonce: str, tcti: str, pcr: tuple[int, ...]) -> None:
    """TPM quote over SHA-256 of the node's public key and the nonce (JSON to stdout)."""
    from crypto.attest import AttestationError, make_attestation
    try:
        doc = make_attestation(tcti, read_public_info(path).public_key, bytes.fromhex(nonce),
                               pcr)
    except (KeyStoreError, AttestationError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(doc, indent=1))


@keys.command(name="verify-attestation")
@click.option("--attestation", type=click.File("r"), required=True)
@click.option("--nonce", required=True)
@click.option("--path", type=click.Path(path_type=Path), help="the node's key file")
@click.option("--public-key", help="or the node's public key, hex")
@click.option("--trusted-ak", type=click.Path(path_type=Path), help="pinned AK public PEM")
def verify_attestation_command(attestation, nonce: str, path: Path | None,  # type: ignore[no-untyped-def]
                               public_key: str | None, trusted_ak: Path | None) -> None:
    """Check a quote: signature, TPM origin, key hash and nonce, PCR digest."""
    from crypto.attest import AttestationError, verify_attestation
    try:
        key = bytes.fromhex(public_key) if public_key else read_public_info(path).public_key  # type: ignore[arg-type]
        pinned = trusted_ak.read_bytes() if trusted_ak else None
        result = verify_attestation(json.load(attestation), key, bytes.fromhex(nonce), pinned)
    except (KeyStoreError, AttestationError, ValueError, TypeError) as exc:
        raise click.ClickException(f"attestation rejected: {exc}") from None
    click.echo(f"attestation valid ({result} attestation key)")


@click.command(name="crypto")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--seconds", type=float, default=0.3, show_default=True,
              help="measuring window per operation")
@click.option("--pool-items", type=int, default=1000, show_default=True,
              help="ML-DSA-87 signatures per pool measurement (Ed25519 gets 8x)")
def bench_crypto(as_json: bool, seconds: float, pool_items: int) -> None:
    """Sign/verify per second per scheme, ML-KEM, and the verification pool (1, 2 workers)."""
    from crypto import bench
    report = bench.run(seconds=seconds, pool_items=pool_items)
    if as_json:
        click.echo(json.dumps(report, indent=1))
        return
    for name, rates in report["schemes"].items():  # type: ignore[union-attr]
        click.echo(f"{name:12} " + "  ".join(f"{k}={v:,.0f}" for k, v in rates.items()))
    for name, rates in report["pool"].items():  # type: ignore[union-attr]
        click.echo(f"pool {name:12} " + "  ".join(f"{k}={v:,.0f}" for k, v in rates.items()))
