"""Which gRPC status code answers which refusal reason, in one table.

The rule (the service and the SDK both follow it):

* A **unary** call whose request is refused ends with a gRPC error status. The stable
  reason name travels twice: as trailing metadata `qenex-reason` and as the first word of
  the status message (`"BAD_SIGNATURE: signature does not verify"`). Clients branch on
  the reason, never on the message text.
* In the **SubmitTransactions stream** one bad transaction must not end the others, so the
  same refusal comes back in-band: `status=REJECTED`, `reason`, `detail`. Only failures of
  the stream itself (node not ready, overload, cancellation) end it with a gRPC status.
* **DUPLICATE is never an error**: resubmitting after a lost answer is the normal way to
  retry, so it is an OK response with `status=DUPLICATE` (or COMMITTED with the receipt
  when the caller waits and it is already committed). ALREADY_EXISTS is kept for
  refusals that are about a thing that exists (e.g. ACCOUNT_EXISTS) rather than a retry.
* A transaction that was **committed but failed** in the ledger (insufficient funds,
  nonce mismatch at apply time) is an OK response: COMMITTED with `receipt.success=false`
  and the ledger reason, because the chain did process it (like a CometBFT DeliverTx code).
* `wait_for_commit` that runs out of time is DEADLINE_EXCEEDED with reason TIMEOUT; the
  transaction stays admitted and may still commit (ask GetTransaction later).

CometBFT returns CheckTx codes inside the response body; we use status codes for unary
calls because every gRPC client library already retries/branches on them.
"""
from __future__ import annotations

import grpc

REASON_METADATA_KEY = "qenex-reason"

_INVALID_ARGUMENT = frozenset({
    "MALFORMED", "TOO_LARGE", "WRONG_CHAIN", "UNKNOWN_SCHEME", "BAD_PUBLIC_KEY",
    "BAD_SIGNATURE", "BAD_ADDRESS", "AMOUNT_OUT_OF_RANGE", "UNKNOWN_CURRENCY",
    "SELF_TRANSFER", "EXPIRED", "BAD_REQUEST", "EMPTY",
})
_FAILED_PRECONDITION = frozenset({
    "BAD_NONCE", "NONCE_MISMATCH", "NONCE_TOO_LOW", "NONCE_TOO_HIGH", "NONCE_GAP",
    "UNKNOWN_ACCOUNT", "UNKNOWN_RECIPIENT", "INSUFFICIENT_FUNDS", "OVERFLOW", "NOT_ISSUER",
    "NOT_LEADER", "NOT_SUPPORTED", "UNKNOWN_SENDER",
})
_RESOURCE_EXHAUSTED = frozenset({
    "MEMPOOL_FULL", "RATE_LIMITED", "OVERLOADED", "WAITERS_FULL", "WATCH_LAGGED",
    "SENDER_QUEUE_FULL",
})
_ALREADY_EXISTS = frozenset({"ACCOUNT_EXISTS", "DUPLICATE", "ALREADY_COMMITTED"})
# BEHIND: the node has not applied the height a read needs by its deadline; another node
# (or the same one later) can answer, which is what UNAVAILABLE tells gRPC clients.
_UNAVAILABLE = frozenset({"NOT_READY", "SHUTTING_DOWN", "STOPPED", "BEHIND"})
_DEADLINE_EXCEEDED = frozenset({"TIMEOUT"})
_NOT_FOUND = frozenset({"NOT_FOUND"})
_INTERNAL = frozenset({"INTERNAL"})  # a bug in the node, never a verdict on the request


def code_for_reason(reason: str) -> grpc.StatusCode:
    """The status code for a stable reason name; unknown names are FAILED_PRECONDITION
    (the node refused on its own state) so a new reason never looks like a server bug."""
    for names, code in ((_INVALID_ARGUMENT, grpc.StatusCode.INVALID_ARGUMENT),
                        (_FAILED_PRECONDITION, grpc.StatusCode.FAILED_PRECONDITION),
                        (_RESOURCE_EXHAUSTED, grpc.StatusCode.RESOURCE_EXHAUSTED),
                        (_ALREADY_EXISTS, grpc.StatusCode.ALREADY_EXISTS),
                        (_UNAVAILABLE, grpc.StatusCode.UNAVAILABLE),
                        (_DEADLINE_EXCEEDED, grpc.StatusCode.DEADLINE_EXCEEDED),
                        (_NOT_FOUND, grpc.StatusCode.NOT_FOUND),
                        (_INTERNAL, grpc.StatusCode.INTERNAL)):
        if reason in names:
            return code
    return grpc.StatusCode.FAILED_PRECONDITION


def status_message(reason: str, detail: str) -> str:
    return f"{reason}: {detail}" if detail else reason


# The REST gateway answers the same reasons with HTTP statuses derived from the gRPC code,
# so one table decides both. FAILED_PRECONDITION is 409 (the request conflicts with the
# node's state) and RESOURCE_EXHAUSTED 429 (retry later), as in Google's HTTP mapping.
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.INTERNAL: 500,
}


def http_status_for_reason(reason: str) -> int:
    return _HTTP_STATUS[code_for_reason(reason)]
