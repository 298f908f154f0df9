"""Every way the ledger refuses a transaction, in one place, with stable names and codes.

The names are part of the public face: clients, receipts (proto `Receipt.reason` /
`reason_text`), metrics and logs use them. Never renumber or rename; only append.

Stateless reasons are decided from the bytes alone (plus the genesis configuration) by
`check_tx` before a transaction enters the mempool, and again at apply time because a
faulty leader may put anything in a block. Stateful reasons are decided at apply time.
A refused transaction changes nothing (not even the sender's nonce) and never stops the
block: it just gets a receipt with `success=False` and its reason.
"""
from __future__ import annotations

import enum

from consensus import canonical


@canonical.register("qenex.tx_reason.v1")
class Reason(enum.IntEnum):
    OK = 0
    # ---- stateless (check_tx and apply)
    MALFORMED = 1            # envelope/body not valid protobuf, or a required field missing
    TOO_LARGE = 2            # envelope longer than tx_bytes_max, or memo too long
    WRONG_CHAIN = 3          # body.chain_id is not this node's chain id
    UNKNOWN_SCHEME = 4       # signature scheme not Ed25519 / ML-DSA-44/65/87
    BAD_PUBLIC_KEY = 5       # public key length does not fit its scheme
    BAD_SIGNATURE = 6        # signature does not verify over tx_signing_bytes
    BAD_ADDRESS = 7          # an address is not 20 B, or sender is not the signer's address
    AMOUNT_OUT_OF_RANGE = 8  # amount is 0 or above AMOUNT_MAX (2^63-1)
    UNKNOWN_CURRENCY = 9     # currency not declared in genesis
    SELF_TRANSFER = 10       # transfer whose recipient is its sender
    BAD_NONCE = 11           # nonce 0 (the first nonce is 1)
    # ---- stateful (apply only)
    EXPIRED = 20             # block timestamp_ms is later than valid_until_ms
    UNKNOWN_ACCOUNT = 21     # sender account does not exist
    UNKNOWN_RECIPIENT = 22   # recipient account does not exist
    ACCOUNT_EXISTS = 23      # create_account for an address already bound
    NONCE_MISMATCH = 24      # nonce is not exactly the sender's last nonce + 1 (a replay of
                             # an applied transaction, e.g. re-proposed after a leader
                             # change, always lands here)
    INSUFFICIENT_FUNDS = 25  # balance below the amount to move or redeem
    OVERFLOW = 26            # the credit would take a balance above AMOUNT_MAX
    NOT_ISSUER = 27          # issue/redeem by an account not named issuer in genesis
    DUPLICATE = 28           # same tx id already earlier in this block


STATELESS_REASONS = frozenset(r for r in Reason if 0 < r < 20)


class LedgerError(Exception):
    """A broken invariant or a driver mistake (wrong height or chain): a bug, not bad input."""


class GenesisError(ValueError):
    """Invalid genesis document; the message starts with the offending key path."""
