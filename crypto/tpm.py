"""TPM 2.0 operations through tpm2-pytss (ESAPI): seal/unseal a seed, NV counter, quote.

Why these choices:
- The storage primary key is re-derived on every use from the owner hierarchy's seed
  (same template -> same key), so nothing needs a persistent handle.
- The 32-byte seed is the sealed object's sensitive data (sealed data is limited to 128
  bytes); optional PCR binding uses a PolicyPCR policy, so a changed boot state refuses.
- The NV counter only ever goes up (TPM guarantee); the double-sign guard stores its value
  in each record, so a guard file restored from an old copy of the disk is detected.
- Quotes are made by an ECDSA P-256 attestation key derived from the endorsement
  hierarchy (again re-derivable). Trusting that key (EK certificate, credential
  activation) is out of scope: the verifier pins the AK public key it was given.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

from crypto.errors import KeyStoreError

_STORAGE = "ecc256:aes128cfb"
_AK = "ecc256:ecdsa-sha256:null"
NV_COUNTER_BYTES = 8


def _tss():  # type: ignore[no-untyped-def]
    os.environ.setdefault("TSS2_LOG", "all+NONE")  # the C library logs every TPM error
    try:
        import tpm2_pytss
    except ImportError:
        raise KeyStoreError("tpm2-pytss is not installed; run `pip install "
                            "'qenex-node[tpm]'` (needs libtss2-dev)") from None
    return tpm2_pytss


def tss_error():  # type: ignore[no-untyped-def]
    return _tss().TSS2_Exception


@contextlib.contextmanager
def open_tpm(tcti: str) -> Iterator[object]:
    """ESAPI context for a TCTI string like "swtpm:host=127.0.0.1,port=2321" or "device"."""
    tss = _tss()
    name, _, conf = tcti.partition(":")
    try:
        esapi = tss.ESAPI(tss.TCTILdr(name, conf or None))
    except tss.TSS2_Exception as exc:
        raise KeyStoreError(f"no TPM reachable at tcti {tcti!r} ({exc}); start the TPM "
                            "(or swtpm) or fix keystore.tcti in the node config") from None
    try:
        yield esapi
    finally:
        esapi.close()


def _storage_primary(esapi):  # type: ignore[no-untyped-def]
    tss = _tss()
    a = tss.TPMA_OBJECT
    template = tss.TPM2B_PUBLIC.parse(_STORAGE, objectAttributes=(
        a.FIXEDTPM | a.FIXEDPARENT | a.SENSITIVEDATAORIGIN | a.USERWITHAUTH | a.RESTRICTED
        | a.DECRYPT | a.NODA))
    handle, *_ = esapi.create_primary(tss.TPM2B_SENSITIVE_CREATE(), template, tss.ESYS_TR.OWNER)
    return handle


def _pcr_selection(pcrs: Sequence[int]) -> str:
    return "sha256:" + ",".join(str(p) for p in sorted(pcrs))


def _policy_session(esapi, pcrs: Sequence[int], trial: bool):  # type: ignore[no-untyped-def]
    tss = _tss()
    kind = tss.TPM2_SE.TRIAL if trial else tss.TPM2_SE.POLICY
    session = esapi.start_auth_session(tss.ESYS_TR.NONE, tss.ESYS_TR.NONE, kind,
                                       tss.TPMT_SYM_DEF(algorithm=tss.TPM2_ALG.NULL),
                                       tss.TPM2_ALG.SHA256)
    esapi.policy_pcr(session, None, _pcr_selection(pcrs))
    return session


def seal(esapi, secret: bytes, pcrs: Sequence[int] = ()) -> tuple[bytes, bytes]:  # type: ignore[no-untyped-def]
    """Seal `secret` under the storage hierarchy; returns (public blob, private blob)."""
    tss = _tss()
    a = tss.TPMA_OBJECT
    attributes = a.FIXEDTPM | a.FIXEDPARENT
    policy = b""
    if pcrs:
        session = _policy_session(esapi, pcrs, trial=True)
        policy = bytes(esapi.policy_get_digest(session))
        esapi.flush_context(session)
    else:
        attributes |= a.USERWITHAUTH
    template = tss.TPM2B_PUBLIC.parse("keyedhash", objectAttributes=attributes,
                                      authPolicy=policy or None)
    sensitive = tss.TPM2B_SENSITIVE_CREATE(
        tss.TPMS_SENSITIVE_CREATE(data=tss.TPM2B_SENSITIVE_DATA(secret)))
    primary = _storage_primary(esapi)
    try:
        private, public, *_ = esapi.create(primary, sensitive, template)
    finally:
        esapi.flush_context(primary)
    return public.marshal(), private.marshal()


def unseal(esapi, public_blob: bytes, private_blob: bytes,  # type: ignore[no-untyped-def]
           pcrs: Sequence[int] = ()) -> bytes:
    tss = _tss()
    public = tss.TPM2B_PUBLIC.unmarshal(public_blob)[0]
    private = tss.TPM2B_PRIVATE.unmarshal(private_blob)[0]
    primary = _storage_primary(esapi)
    try:
        handle = esapi.load(primary, private, public)
    finally:
        esapi.flush_context(primary)
    try:
        if not pcrs:
            return bytes(esapi.unseal(handle))
        session = _policy_session(esapi, pcrs, trial=False)
        try:
            return bytes(esapi.unseal(handle, session1=session))
        finally:
            esapi.flush_context(session)
    finally:
        esapi.flush_context(handle)


# ------------------------------------------------------------ NV counter
def _counter_handle(esapi, index: int, create: bool):  # type: ignore[no-untyped-def]
    tss = _tss()
    try:
        return esapi.tr_from_tpmpublic(index)
    except tss.TSS2_Exception:
        if not create:
            raise
    nv = tss.TPMA_NV
    attributes = (nv.OWNERWRITE | nv.OWNERREAD | nv.AUTHREAD | nv.AUTHWRITE
                  | (tss.TPM2_NT.COUNTER << nv.TPM2_NT_SHIFT))
    public = tss.TPM2B_NV_PUBLIC(nvPublic=tss.TPMS_NV_PUBLIC(
        nvIndex=index, nameAlg=tss.TPM2_ALG.SHA256, attributes=attributes,
        dataSize=NV_COUNTER_BYTES))
    handle = esapi.nv_define_space(None, public)
    esapi.nv_increment(handle, tss.ESYS_TR.OWNER)  # a counter is unreadable until written
    return handle


def counter_read(esapi, index: int, create: bool = True) -> int:  # type: ignore[no-untyped-def]
    tss = _tss()
    handle = _counter_handle(esapi, index, create)
    data = esapi.nv_read(handle, NV_COUNTER_BYTES, auth_handle=tss.ESYS_TR.OWNER)
    return int.from_bytes(bytes(data), "big")


def counter_increment(esapi, index: int) -> int:  # type: ignore[no-untyped-def]
    tss = _tss()
    handle = _counter_handle(esapi, index, create=True)
    esapi.nv_increment(handle, tss.ESYS_TR.OWNER)
    data = esapi.nv_read(handle, NV_COUNTER_BYTES, auth_handle=tss.ESYS_TR.OWNER)
    return int.from_bytes(bytes(data), "big")


# ------------------------------------------------------------ quote
def quote(esapi, qualifying_data: bytes,  # type: ignore[no-untyped-def]
          pcrs: Sequence[int]) -> tuple[bytes, bytes, bytes]:
    """Quote `pcrs` with `qualifying_data` (<= 64 B): (attest bytes, signature DER, AK PEM)."""
    from cryptography.hazmat.primitives.asymmetric import utils
    tss = _tss()
    a = tss.TPMA_OBJECT
    template = tss.TPM2B_PUBLIC.parse(_AK, objectAttributes=(
        a.FIXEDTPM | a.FIXEDPARENT | a.SENSITIVEDATAORIGIN | a.USERWITHAUTH | a.RESTRICTED
        | a.SIGN_ENCRYPT))
    ak, ak_public, *_ = esapi.create_primary(None, template, tss.ESYS_TR.ENDORSEMENT)
    try:
        attest, signature = esapi.quote(ak, _pcr_selection(pcrs), qualifying_data)
    finally:
        esapi.flush_context(ak)
    ecdsa = signature.signature.ecdsa
    der = utils.encode_dss_signature(int.from_bytes(bytes(ecdsa.signatureR), "big"),
                                     int.from_bytes(bytes(ecdsa.signatureS), "big"))
    return bytes(attest), der, bytes(ak_public.to_pem())


def parse_quote(attest: bytes) -> tuple[bool, bytes, bytes]:
    """(is a TPM-generated quote, qualifying data, PCR digest) from TPMS_ATTEST bytes."""
    tss = _tss()
    parsed = tss.TPMS_ATTEST.unmarshal(attest)[0]
    genuine = parsed.magic == tss.TPM2_GENERATED.VALUE and parsed.type == tss.TPM2_ST.ATTEST_QUOTE
    return genuine, bytes(parsed.extraData), bytes(parsed.attested.quote.pcrDigest)


def pcr_values(esapi, pcrs: Sequence[int]) -> list[bytes]:  # type: ignore[no-untyped-def]
    _, _, values = esapi.pcr_read(_pcr_selection(pcrs))
    return [bytes(v) for v in values]
