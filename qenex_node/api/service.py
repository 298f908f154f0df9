"""The client service `qenex.v1.Node` on grpcio's synchronous server.

Handlers run on grpcio's bounded thread pool and reach the trio runtime only through
`trio.from_thread.run(backend.method, ..., trio_token=token)`; they never touch node state
directly. Which outcomes are OK responses and which are gRPC errors is decided in one
place, qenex_node/api/status_codes.py (module docstring): in short, unary refusals are gRPC
errors with the reason in trailing metadata `qenex-reason` and in the status message;
stream items carry refusals in-band (status=REJECTED); DUPLICATE and committed-but-failed
transactions are OK responses.

A `wait_for_commit` call occupies a worker thread until commit or timeout; its timeout is
capped by `wait_timeout_ms_max` and by the client's own deadline, so a thread is never held
longer than someone is willing to wait. Watch streams also occupy a thread each, so their
number is capped (`watch_streams_max`) below the worker count to keep unary calls served.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc
import trio

from proto.qenex.v1 import node_pb2, node_pb2_grpc
from qenex_node.api import codec
from qenex_node.api.backend import (
    LINEARIZABLE,
    LOCAL,
    BackendRefusal,
    NodeBackend,
    ReadOptions,
    StateProofView,
)
from qenex_node.api.evidence import EVIDENCE_LIMIT_DEFAULT, EVIDENCE_LIMIT_MAX
from qenex_node.api.status_codes import REASON_METADATA_KEY, code_for_reason, status_message
from qenex_node.api.watch import EventBridge, WatchFailure

TX_ID_BYTES = 32
ADDRESS_BYTES = 20
WAIT_TIMEOUT_MS_DEFAULT = 10_000
WAIT_TIMEOUT_MS_MAX = 60_000
DEADLINE_MARGIN_MS = 50  # answer TIMEOUT a little before the client's own deadline fires
_CONSISTENCY = {node_pb2.READ_CONSISTENCY_UNSPECIFIED: LINEARIZABLE,
                node_pb2.LINEARIZABLE: LINEARIZABLE, node_pb2.LOCAL: LOCAL}


def abort(context: grpc.ServicerContext, reason: str, detail: str = "") -> NoReturn:
    context.set_trailing_metadata(((REASON_METADATA_KEY, reason),))
    context.abort(code_for_reason(reason), status_message(reason, detail))
    raise AssertionError("context.abort returned")  # grpcio raises; keeps type checkers honest


class NodeService(node_pb2_grpc.NodeServicer):
    def __init__(self, backend: NodeBackend, token: trio.lowlevel.TrioToken, *,
                 watch_streams_max: int = 4, vote_encoder: codec.VoteEncoder | None = None,
                 wait_timeout_ms_default: int = WAIT_TIMEOUT_MS_DEFAULT,
                 wait_timeout_ms_max: int = WAIT_TIMEOUT_MS_MAX) -> None:
        self._backend = backend
        self._token = token
        self._watch_slots = threading.BoundedSemaphore(max(1, watch_streams_max))
        self._vote_encoder = vote_encoder
        self._wait_timeout_ms_default = wait_timeout_ms_default
        self._wait_timeout_ms_max = wait_timeout_ms_max

    # ------------------------------------------------------------ plumbing
    def _call(self, context: grpc.ServicerContext, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one backend coroutine in the trio loop; map its refusals to statuses."""
        try:
            return trio.from_thread.run(fn, *args, trio_token=self._token)
        except BackendRefusal as exc:
            abort(context, exc.reason, exc.detail)
        except trio.RunFinishedError:
            abort(context, "STOPPED", "the node runtime has stopped")

    def _wait_timeout_ms(self, requested_ms: int, context: grpc.ServicerContext) -> int:
        timeout_ms = min(requested_ms or self._wait_timeout_ms_default, self._wait_timeout_ms_max)
        remaining_s = context.time_remaining()
        if remaining_s is not None:
            timeout_ms = min(timeout_ms, max(1, int(remaining_s * 1000) - DEADLINE_MARGIN_MS))
        return timeout_ms

    def _read_options(self, read: node_pb2.ReadOptions,
                      context: grpc.ServicerContext) -> ReadOptions:
        if read.consistency not in _CONSISTENCY:
            abort(context, "BAD_REQUEST", f"unknown read consistency {read.consistency}")
        return ReadOptions(_CONSISTENCY[read.consistency], read.min_height,
                           self._wait_timeout_ms(read.timeout_ms, context))

    def _submit(self, request: node_pb2.SubmitTransactionRequest,
                context: grpc.ServicerContext) -> Any:
        tx = request.tx.SerializeToString(deterministic=True)
        timeout_ms = self._wait_timeout_ms(request.timeout_ms, context)
        return self._call(context, self._backend.submit, tx, request.wait_for_commit,
                          timeout_ms)

    # ------------------------------------------------------------ submit
    def SubmitTransaction(self, request: node_pb2.SubmitTransactionRequest,
                          context: grpc.ServicerContext) -> node_pb2.SubmitTransactionResponse:
        if not request.HasField("tx"):
            abort(context, "MALFORMED", "request has no tx")
        result = self._submit(request, context)
        if result.status == "REJECTED":
            abort(context, result.reason, result.detail)
        return codec.submit_result_to_pb(result)

    def SubmitTransactions(self, request_iterator: Iterator[node_pb2.SubmitTransactionRequest],
                           context: grpc.ServicerContext
                           ) -> Iterator[node_pb2.SubmitTransactionResponse]:
        # One at a time, in order: the client's send window is the back-pressure.
        for request in request_iterator:
            if not request.HasField("tx"):
                yield node_pb2.SubmitTransactionResponse(
                    status=node_pb2.REJECTED, reason="MALFORMED", detail="request has no tx")
                continue
            yield codec.submit_result_to_pb(self._submit(request, context))

    # ------------------------------------------------------------ queries
    def GetTransaction(self, request: node_pb2.GetTransactionRequest,
                       context: grpc.ServicerContext) -> node_pb2.GetTransactionResponse:
        if len(request.tx_id) != TX_ID_BYTES:
            abort(context, "BAD_REQUEST", f"tx_id must be {TX_ID_BYTES} B")
        record, read_height = self._call(context, self._backend.get_transaction,
                                         request.tx_id, self._read_options(request.read,
                                                                           context))
        if record is None:
            abort(context, "NOT_FOUND", f"no committed transaction {request.tx_id.hex()} "
                  f"at height {read_height}")
        msg = codec.transaction_record_to_pb(record, request.prove, self._vote_encoder)
        msg.read_height = read_height
        return msg

    def GetAccount(self, request: node_pb2.GetAccountRequest,
                   context: grpc.ServicerContext) -> node_pb2.GetAccountResponse:
        if len(request.address) != ADDRESS_BYTES:
            abort(context, "BAD_REQUEST", f"address must be {ADDRESS_BYTES} B")
        answer = self._call(context, self._backend.get_account, request.address,
                            request.prove, self._read_options(request.read, context))
        account, proof = answer.account, answer.proof
        # Absence is an answer (found=false, with a non-membership proof when asked), not
        # NOT_FOUND: a client that asked for a proof must get one either way.
        msg = node_pb2.GetAccountResponse(found=account is not None, height=answer.height,
                                          state_root=answer.state_root)
        if account is not None:
            msg.account.CopyFrom(codec.account_to_pb(account))
        if proof is not None:
            if not isinstance(proof, StateProofView):
                # A contract bug in the backend (a bare ledger proof has no root/height):
                # refuse loudly rather than send a proof no client can check.
                abort(context, "INTERNAL", f"backend returned {type(proof).__name__}, "
                      "expected StateProofView")
            msg.proof.CopyFrom(codec.state_proof_to_pb(proof, self._vote_encoder))
        return msg

    def GetBlock(self, request: node_pb2.GetBlockRequest,
                 context: grpc.ServicerContext) -> node_pb2.GetBlockResponse:
        selector = request.WhichOneof("selector")
        if selector is None:
            abort(context, "BAD_REQUEST", "give a height or a block_hash")
        height = request.height if selector == "height" else None
        block_hash = request.block_hash if selector == "block_hash" else None
        item, read_height = self._call(context, self._backend.get_block, height, block_hash,
                                       self._read_options(request.read, context))
        if item is None:
            what = f"height {height}" if height is not None else f"hash {block_hash.hex()}"
            abort(context, "NOT_FOUND", f"no committed block at {what} (applied height "
                  f"{read_height})")
        return node_pb2.GetBlockResponse(
            block=codec.committed_block_to_pb(item, self._vote_encoder),
            read_height=read_height)

    def GetEvidence(self, request: node_pb2.GetEvidenceRequest,
                    context: grpc.ServicerContext) -> node_pb2.GetEvidenceResponse:
        limit = request.limit or EVIDENCE_LIMIT_DEFAULT
        if limit > EVIDENCE_LIMIT_MAX:
            abort(context, "BAD_REQUEST", f"limit {limit} is above the maximum "
                  f"{EVIDENCE_LIMIT_MAX}; page with next_height instead")
        if request.to_height and request.from_height > request.to_height:
            abort(context, "BAD_REQUEST", f"from_height {request.from_height} is above "
                  f"to_height {request.to_height}")
        validator = request.validator if request.HasField("validator") else None
        page = self._call(context, self._backend.get_evidence, request.from_height,
                          request.to_height, validator, limit)
        return codec.evidence_page_to_pb(page)

    def GetStatus(self, request: node_pb2.GetStatusRequest,
                  context: grpc.ServicerContext) -> node_pb2.NodeStatus:
        return codec.status_to_pb(self._call(context, self._backend.status))

    def TransferLeadership(self, request: node_pb2.TransferLeadershipRequest,
                           context: grpc.ServicerContext) -> node_pb2.TransferLeadershipResponse:
        leader = self._call(context, self._backend.transfer_leadership, request.to)
        return node_pb2.TransferLeadershipResponse(
            started=True, leader=-1 if leader is None else leader)

    # ------------------------------------------------------------ events
    def WatchEvents(self, request: node_pb2.WatchEventsRequest,
                    context: grpc.ServicerContext) -> Iterator[node_pb2.Event]:
        if not self._watch_slots.acquire(blocking=False):
            abort(context, "OVERLOADED", "too many event streams open on this node")
        bridge = EventBridge(self._backend, self._token)
        try:
            try:
                bridge.start(request.from_height)
            except trio.RunFinishedError:
                abort(context, "STOPPED", "the node runtime has stopped")
            context.add_callback(bridge.stop)
            yield from self._relay(bridge, context)
        finally:
            bridge.stop()
            self._watch_slots.release()

    def _relay(self, bridge: EventBridge, context: grpc.ServicerContext
               ) -> Iterator[node_pb2.Event]:
        try:
            for item in bridge.events():
                if isinstance(item, WatchFailure):
                    abort(context, item.reason, item.detail)
                yield codec.event_to_pb(item)
        except trio.RunFinishedError:
            abort(context, "STOPPED", "the node runtime has stopped")
