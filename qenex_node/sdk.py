"""Python SDK for a QENEX node's client API (`qenex.v1.Node` over gRPC).

    from qenex_node.sdk import QenexClient, load_account_key
    with QenexClient("127.0.0.1:7050") as client:
        key = load_account_key("alice.key.json")
        outcome = client.transfer(key, to=bob_address, amount=1250, currency="USD")
        print(outcome.status, outcome.height, outcome.receipt.success)

Every failure is a `QenexError(code, reason, detail)`: `code` is the gRPC status name,
`reason` the node's stable reason name (trailing metadata `qenex-reason`), `detail` text
for humans.

Reads are linearizable by default (they reflect every transaction committed before the
read began, whichever node answers); `consistency="local"` asks for the node's latest
applied state instead. Either way the client keeps a session: it remembers the highest
height it has been told (commit answers, read answers) and sends it as `min_height` with
every read, so a client that moves between nodes never sees time go backwards - a node
that has not applied that height answers BEHIND (QenexError) rather than older state.

Queries return the protobuf responses (`proto.qenex.v1.node_pb2`), checked on
the way in: block hashes and tx roots are recomputed here, and with `prove=True` the
Merkle proofs are verified here (a bad proof raises reason "BAD_PROOF"); evidence items
are checked against their own canonical bytes. Commit certificates and the signatures in
evidence are not checked by the SDK: that needs the validator set (a later step).

Account key files: the client key format of `qenex_node.client_keys` (what `qenex testnet`
writes to clients/clientK.json: JSON, mode 0600, seed in the clear, for test networks). A
node-style encrypted key file (crypto.keystore, store "file") is also accepted; its
passphrase comes from QENEX_KEY_PASSPHRASE or a prompt.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf.message import DecodeError

from consensus import canonical
from consensus.types import merkle_root, merkle_verify
from crypto import schemes
from ledger import tx as ledger_tx
from ledger.account import ADDRESS_BYTES, Account, encode_account, make_balances
from ledger.state_tree import PROOF_SCHEME, AccountProof, verify_account_proof
from proto.qenex.v1 import consensus_pb2, node_pb2, node_pb2_grpc, transaction_pb2
from qenex_node.api.codec import OTHER_LEAF_ENTRY_BYTES, evidence_to_pb, header_from_pb
from qenex_node.api.evidence import evidence_view
from qenex_node.api.status_codes import REASON_METADATA_KEY
from qenex_node.client_keys import ClientKey, ClientKeyError, load_client_key

TIMEOUT_S_DEFAULT = 10.0
WAIT_TIMEOUT_MS_DEFAULT = 10_000
MESSAGE_BYTES_MAX_DEFAULT = 4 * 1024 * 1024
KEY_FILE_BYTES_MAX = 64 * 1024
READ_DEADLINE_MARGIN_MS = 250  # the node answers BEHIND this long before the call times out
CLIENT_CODE = "CLIENT"  # QenexError.code for failures found on this side of the wire
CONSISTENCY = {"linearizable": node_pb2.LINEARIZABLE, "local": node_pb2.LOCAL}



class QenexError(Exception):
    def __init__(self, code: str, reason: str, detail: str = "") -> None:
        super().__init__(f"{code} {reason}: {detail}" if detail else f"{code} {reason}")
        self.code = code
        self.reason = reason
        self.detail = detail


def _error_from_rpc(exc: grpc.RpcError) -> QenexError:
    code = exc.code().name if exc.code() is not None else "UNKNOWN"  # type: ignore[attr-defined]
    metadata = dict(exc.trailing_metadata() or ())  # type: ignore[attr-defined]
    reason = str(metadata.get(REASON_METADATA_KEY, code))
    detail = exc.details() or ""  # type: ignore[attr-defined]
    if detail.startswith(reason + ": "):
        detail = detail[len(reason) + 2:]
    elif detail == reason:
        detail = ""
    return QenexError(code, reason, detail)


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    tx_id: bytes
    status: str  # "ACCEPTED" | "COMMITTED" | "REJECTED" (streams only) | "DUPLICATE"
    height: int = 0
    receipt: transaction_pb2.Receipt | None = None  # when COMMITTED
    reason: str = ""
    detail: str = ""

    @classmethod
    def from_pb(cls, msg: node_pb2.SubmitTransactionResponse) -> SubmitOutcome:
        return cls(msg.tx_id, node_pb2.SubmitStatus.Name(msg.status), msg.height,
                   msg.receipt if msg.HasField("receipt") else None, msg.reason, msg.detail)


# ------------------------------------------------------------ account keys
# The key file format is the lead's `qenex_node.client_keys` ("qenex-client-key"), the one
# `qenex testnet` writes; `AccountKey` is that module's ClientKey.
AccountKey = ClientKey


def generate_account_key(scheme: schemes.Scheme = schemes.Scheme.ED25519) -> AccountKey:
    return ClientKey.generate(scheme)


def write_account_key(path: str | Path, key: AccountKey) -> None:
    """Create the key file (mode 0600); refuses to overwrite an existing file."""
    key.save(Path(path))


def _node_style_key(path: Path) -> AccountKey:
    from crypto.errors import KeyStoreError
    from crypto.keystore import FileKeyStoreConfig, read_key_file
    from crypto.keystore_file import recover
    try:
        info, record = read_key_file(path)
        if info.store != "file":
            raise QenexError(CLIENT_CODE, "BAD_KEY_FILE", f"{path}: a {info.store!r} key "
                             "cannot sign client transactions here; use a file key")
        seed = recover(FileKeyStoreConfig(path, prompt=True), record, info)
    except KeyStoreError as exc:
        raise QenexError(CLIENT_CODE, "BAD_KEY_FILE", str(exc)) from None
    return ClientKey.from_seed(info.scheme, seed)


def load_account_key(path: str | Path) -> AccountKey:
    """A client key file, or a node-style encrypted key file (store "file")."""
    path = Path(path)
    try:
        head = json.loads(path.read_bytes()[:KEY_FILE_BYTES_MAX])
    except (OSError, ValueError) as exc:
        raise QenexError(CLIENT_CODE, "BAD_KEY_FILE", f"{path}: {exc}") from None
    if isinstance(head, dict) and head.get("format") == "qenex-node-key":
        return _node_style_key(path)
    try:
        return load_client_key(path)
    except ClientKeyError as exc:
        raise QenexError(CLIENT_CODE, "BAD_KEY_FILE", str(exc)) from None


def parse_address(address: bytes | str) -> bytes:
    raw = bytes.fromhex(address.removeprefix("0x")) if isinstance(address, str) else address
    if len(raw) != ADDRESS_BYTES:
        raise QenexError(CLIENT_CODE, "BAD_ADDRESS", f"an address is {ADDRESS_BYTES} B "
                         f"({2 * ADDRESS_BYTES} hex digits)")
    return raw


# ------------------------------------------------------------ client-side verification
def _bad_proof(detail: str) -> QenexError:
    return QenexError(CLIENT_CODE, "BAD_PROOF", detail)


def verify_block(msg: consensus_pb2.CommittedBlock) -> None:
    """Recompute the block hash and tx root; raise BAD_PROOF if the node's data disagrees."""
    header = header_from_pb(msg.block.header)
    block_hash = canonical.digest(header)
    if msg.block_hash != block_hash or msg.certificate.block_hash != block_hash:
        raise _bad_proof(f"block {header.height}: hash does not match its header")
    if merkle_root(list(msg.block.txs)) != header.tx_root:
        raise _bad_proof(f"block {header.height}: tx_root does not match its transactions")


def _account_from_pb(msg: node_pb2.Account) -> Account:
    balances = make_balances({b.currency: b.amount for b in msg.balances})
    return Account(msg.address, int(msg.scheme), msg.public_key, msg.nonce, balances)


def verify_account(address: bytes, msg: node_pb2.GetAccountResponse) -> None:
    """Check the state proof in `msg` for `address` (membership or absence)."""
    proof = msg.proof
    if not msg.HasField("proof") or proof.scheme != PROOF_SCHEME:
        raise _bad_proof(f"expected a {PROOF_SCHEME} proof")
    siblings = list(proof.siblings)
    other = siblings.pop() if siblings and len(siblings[-1]) == OTHER_LEAF_ENTRY_BYTES else b""
    account_proof = AccountProof(tuple(siblings), other[:32], other[32:])
    leaf = None
    if msg.found:
        leaf = encode_account(_account_from_pb(msg.account))
        if leaf != proof.leaf or msg.account.address != address:
            raise _bad_proof("proof leaf is not the account returned")
    if not verify_account_proof(proof.state_root, address, leaf, account_proof):
        raise _bad_proof("account proof does not lead to the state root")
    if proof.HasField("header") and (proof.header.state_root != proof.state_root
                                     or proof.header.state_height != proof.height):
        raise _bad_proof("the header does not carry the proof's state root")


def verify_transaction(tx_id: bytes, msg: node_pb2.GetTransactionResponse) -> None:
    if ledger_tx.tx_id_of(msg.tx.body) != tx_id:
        raise _bad_proof("the transaction returned is not the one asked for")
    # Leaves are the envelope bytes as the node stored them: its deterministic
    # serialisation of the parsed request, which re-serialising here reproduces.
    leaf = msg.tx.SerializeToString(deterministic=True)
    p = msg.proof
    if not merkle_verify(leaf, p.leaf_index, p.leaf_count, tuple(p.path), msg.header.tx_root):
        raise _bad_proof("transaction proof does not lead to the header's tx_root")


def verify_evidence(item: node_pb2.Evidence) -> None:
    """The flat fields of an evidence item must say what its canonical bytes say: the
    item is rebuilt from its bytes with the node's own mapping and compared whole."""
    try:
        view = evidence_view(item.height, item.index, item.validator, item.evidence)
    except (canonical.CanonicalError, ValueError) as exc:
        raise _bad_proof(f"evidence at height {item.height}: {exc}") from None
    if evidence_to_pb(view) != item:
        raise _bad_proof(f"evidence at height {item.height}: fields differ from its bytes")


def _consistency(level: str) -> str:
    if level not in CONSISTENCY:
        raise QenexError(CLIENT_CODE, "BAD_REQUEST", f"consistency must be one of "
                         f"{sorted(CONSISTENCY)}, not {level!r}")
    return level


# ------------------------------------------------------------ the client
class QenexClient:
    def __init__(self, target: str, *, timeout_s: float = TIMEOUT_S_DEFAULT,
                 message_bytes_max: int = MESSAGE_BYTES_MAX_DEFAULT,
                 consistency: str = "linearizable", session_height: int = 0) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.consistency = _consistency(consistency)
        # The highest height this client has been told of (read-your-writes, monotonic
        # reads): sent as min_height with every read. Share it between clients of one
        # session by passing it on (`session_height=other.session_height`).
        self.session_height = session_height
        options = [("grpc.max_receive_message_length", message_bytes_max),
                   ("grpc.max_send_message_length", message_bytes_max)]
        self._channel = grpc.insecure_channel(target, options=options)
        self._stub = node_pb2_grpc.NodeStub(self._channel)
        self._chain_id: str | None = None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> QenexClient:  # noqa: PYI034 - Python 3.11 floor, no Self needed
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unary(self, method, request, timeout_s: float | None = None):  # type: ignore[no-untyped-def]
        try:
            return method(request, timeout=timeout_s or self.timeout_s)
        except grpc.RpcError as exc:
            raise _error_from_rpc(exc) from None

    # ------------------------------------------------------------ submit
    def submit(self, signed_tx: bytes, wait: bool = False,
               timeout_ms: int = WAIT_TIMEOUT_MS_DEFAULT) -> SubmitOutcome:
        """Submit one encoded SignedTransaction; refusals raise QenexError."""
        request = _submit_request(signed_tx, wait, timeout_ms)
        # The call's own deadline outlives the wait so the node's TIMEOUT answer arrives.
        deadline_s = max(self.timeout_s, timeout_ms / 1000 + 1.0) if wait else None
        outcome = SubmitOutcome.from_pb(self._unary(self._stub.SubmitTransaction, request,
                                                    deadline_s))
        self._saw_height(outcome.height)
        return outcome

    def submit_many(self, signed_txs: Iterable[bytes], wait: bool = False,
                    timeout_ms: int = WAIT_TIMEOUT_MS_DEFAULT) -> Iterator[SubmitOutcome]:
        """Stream transactions; yields one outcome per transaction, in order. Refusals
        come back as outcomes with status REJECTED (the stream goes on)."""
        requests = (_submit_request(tx, wait, timeout_ms) for tx in signed_txs)
        call = self._stub.SubmitTransactions(requests)
        try:
            for msg in call:
                self._saw_height(msg.height)
                yield SubmitOutcome.from_pb(msg)
        except grpc.RpcError as exc:
            raise _error_from_rpc(exc) from None
        finally:
            call.cancel()  # no-op when finished; frees the stream if the caller stopped early

    def chain_id(self) -> str:
        if self._chain_id is None:
            self._chain_id = self.status().chain_id
        return self._chain_id

    def next_nonce(self, address: bytes | str) -> int:
        response = self.account(address)
        if not response.found:
            raise QenexError(CLIENT_CODE, "UNKNOWN_ACCOUNT",
                             f"account {parse_address(address).hex()} does not exist")
        return response.account.nonce + 1

    def transfer(self, key: AccountKey, to: bytes | str, amount: int, currency: str = "USD",
                 wait: bool = True, memo: str = "",
                 timeout_ms: int = WAIT_TIMEOUT_MS_DEFAULT) -> SubmitOutcome:
        """Build, sign and submit a transfer of `amount` minor units, with the next nonce."""
        tx = ledger_tx.build_transfer(self.chain_id(), int(key.scheme), key.seed,
                                      self.next_nonce(key.address), parse_address(to), amount,
                                      currency, memo)
        return self.submit(tx, wait=wait, timeout_ms=timeout_ms)

    def create_account(self, key: AccountKey, wait: bool = True,
                       timeout_ms: int = WAIT_TIMEOUT_MS_DEFAULT) -> SubmitOutcome:
        tx = ledger_tx.build_create_account(self.chain_id(), int(key.scheme), key.seed)
        return self.submit(tx, wait=wait, timeout_ms=timeout_ms)

    # ------------------------------------------------------------ operators
    def transfer_leadership(self, to: int) -> int | None:
        """Ask this node (the leader) to hand leadership to validator `to`; returns the
        leader it knows now. QenexError NOT_LEADER / NOT_SUPPORTED when it cannot."""
        reply = self._unary(self._stub.TransferLeadership,
                            node_pb2.TransferLeadershipRequest(to=to))
        return None if reply.leader < 0 else reply.leader

    # ------------------------------------------------------------ queries
    def status(self) -> node_pb2.NodeStatus:
        return self._unary(self._stub.GetStatus, node_pb2.GetStatusRequest())

    def _saw_height(self, height: int) -> None:
        self.session_height = max(self.session_height, height)

    def _read_options(self, consistency: str | None, min_height: int) -> node_pb2.ReadOptions:
        level = _consistency(consistency or self.consistency)
        # Leave the node a margin inside the call's deadline to answer BEHIND itself.
        timeout_ms = max(1, int(self.timeout_s * 1000) - READ_DEADLINE_MARGIN_MS)
        return node_pb2.ReadOptions(consistency=CONSISTENCY[level], timeout_ms=timeout_ms,
                                    min_height=max(min_height, self.session_height))

    def account(self, address: bytes | str, prove: bool = False, *,
                consistency: str | None = None, min_height: int = 0
                ) -> node_pb2.GetAccountResponse:
        """The account as of a state named in the answer (`height`, `state_root`)."""
        raw = parse_address(address)
        request = node_pb2.GetAccountRequest(address=raw, prove=prove,
                                             read=self._read_options(consistency, min_height))
        response = self._unary(self._stub.GetAccount, request)
        if prove:
            verify_account(raw, response)
        self._saw_height(response.height)
        return response

    def transaction(self, tx_id: bytes | str, prove: bool = False, *,
                    consistency: str | None = None, min_height: int = 0
                    ) -> node_pb2.GetTransactionResponse:
        raw = bytes.fromhex(tx_id) if isinstance(tx_id, str) else tx_id
        request = node_pb2.GetTransactionRequest(
            tx_id=raw, prove=prove, read=self._read_options(consistency, min_height))
        response = self._unary(self._stub.GetTransaction, request)
        if prove:
            verify_transaction(raw, response)
        self._saw_height(response.read_height)
        return response

    def block(self, selector: int | bytes | str, *, consistency: str | None = None,
              min_height: int = 0) -> consensus_pb2.CommittedBlock:
        """By height (int) or hash (32 B, or 64 hex digits); checked before it is returned."""
        read = self._read_options(consistency, min_height)
        if isinstance(selector, int):
            request = node_pb2.GetBlockRequest(height=selector, read=read)
        else:
            raw = bytes.fromhex(selector) if isinstance(selector, str) else selector
            request = node_pb2.GetBlockRequest(block_hash=raw, read=read)
        response = self._unary(self._stub.GetBlock, request)
        verify_block(response.block)
        self._saw_height(response.read_height)
        return response.block

    def get_evidence(self, from_height: int = 0, to_height: int = 0,
                     validator: int | None = None, limit: int = 0
                     ) -> node_pb2.GetEvidenceResponse:
        """One page of committed equivocation evidence at heights [from_height, to_height]
        (0 = the tip), against `validator` or anyone, at most `limit` items (0 = the node's
        default, 100; above 1,000 is refused with BAD_REQUEST). Page on with
        from_height=response.next_height until it is 0. Each item is checked against its
        canonical bytes (BAD_PROOF)."""
        request = node_pb2.GetEvidenceRequest(from_height=from_height, to_height=to_height,
                                              limit=limit)
        if validator is not None:
            request.validator = validator
        response = self._unary(self._stub.GetEvidence, request)
        for item in response.items:
            verify_evidence(item)
        return response

    def watch(self, from_height: int = 0) -> Iterator[node_pb2.Event]:
        """Events until the caller stops iterating (closing the generator cancels the call)."""
        call = self._stub.WatchEvents(node_pb2.WatchEventsRequest(from_height=from_height))
        try:
            yield from call
        except grpc.RpcError as exc:
            raise _error_from_rpc(exc) from None
        finally:
            call.cancel()


def _submit_request(signed_tx: bytes, wait: bool, timeout_ms: int
                    ) -> node_pb2.SubmitTransactionRequest:
    try:
        envelope = transaction_pb2.SignedTransaction.FromString(signed_tx)
    except DecodeError as exc:
        raise QenexError(CLIENT_CODE, "MALFORMED", f"not a SignedTransaction: {exc}") from None
    return node_pb2.SubmitTransactionRequest(tx=envelope, wait_for_commit=wait,
                                             timeout_ms=timeout_ms)
