"""The ledger: deterministic apply of blocks to account state (implements qenex_node.core.app.Application).

`Ledger.apply(block)` checks every transaction again (a faulty leader may propose
anything), applies the valid ones in block order on a per-block overlay, then folds the
touched accounts into the state and the state tree once. Time comes only from
`block.header.timestamp_ms`. A refused transaction gets a receipt with a typed reason and
changes nothing; nothing a transaction carries can make `apply` raise.

Durability is the driver's business: it writes `BlockResult.state_changes` (with the block,
receipts and engine records) in one storage write transaction. If that write fails, the
in-memory ledger is ahead of disk: drop it and rebuild with `Ledger.restore` from storage.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from consensus.types import GENESIS_HASH, Block
from crypto import schemes
from ledger.account import Account, encode_account, make_balances
from ledger.errors import LedgerError, Reason
from ledger.genesis import Genesis
from ledger.money import checked_add, checked_sub
from ledger.receipts import AppliedBlock, TxCheck, TxOutcome
from ledger.state_tree import AccountProof, StateTree
from ledger.tx import (
    KIND_CREATE,
    KIND_ISSUE,
    KIND_REDEEM,
    KIND_TRANSFER,
    Parsed,
    Tx,
    Verifier,
    parse_tx,
)

VERIFIED_CACHE_MAX = 65_536  # envelopes whose signature this node already checked


@dataclass(frozen=True, slots=True)
class BlockResult:
    applied: AppliedBlock  # height, hash, state root, one outcome per tx in block order
    state_changes: tuple[tuple[bytes, bytes], ...]  # (address, account bytes), sorted


class _Work:
    """A touched account inside one block: mutable until the block is folded in."""
    __slots__ = ("balances", "base", "nonce")

    def __init__(self, base: Account) -> None:
        self.base = base
        self.nonce = base.nonce
        self.balances = dict(base.balances)

    def freeze(self) -> Account:
        b = self.base
        return Account(b.address, b.scheme, b.public_key, self.nonce, make_balances(self.balances))


class Ledger:
    def __init__(self, genesis: Genesis, *, verifier: Verifier | None = schemes.verify,
                 verified_cache_max: int = VERIFIED_CACHE_MAX) -> None:
        """A ledger at height 0 holding the genesis accounts.

        `verifier=None` disables signature checks entirely (benchmarks only).
        """
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self._currencies = frozenset(c.code for c in genesis.currencies)
        self._issuers = {c.code: frozenset(c.issuers) for c in genesis.currencies}
        self._verifier = verifier
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._verified_cache_max = verified_cache_max
        self._height = 0
        self._block_hash = GENESIS_HASH
        self._accounts: dict[bytes, Account] = {a.address: a for a in genesis.accounts}
        self._tree = StateTree.from_accounts([(a.address, encode_account(a))
                                              for a in genesis.accounts])
        self._root = self._tree.root()

    @classmethod
    def restore(cls, genesis: Genesis, height: int, block_hash: bytes,
                accounts: Iterable[Account], *, verifier: Verifier | None = schemes.verify) -> Ledger:
        """Rebuild the ledger at `height` from stored accounts (after a restart or snapshot)."""
        ledger = cls(Genesis(genesis.chain_id, genesis.currencies, (), genesis.genesis_time_ms),
                     verifier=verifier)
        ledger.genesis = genesis
        ledger._accounts = {a.address: a for a in accounts}
        ledger._tree = StateTree.from_accounts([(a.address, encode_account(a))
                                                for a in ledger._accounts.values()])
        ledger._root = ledger._tree.root()
        ledger._height, ledger._block_hash = height, block_hash
        return ledger

    # ------------------------------------------------------------ Application protocol
    @property
    def height(self) -> int:
        return self._height

    @property
    def state_root(self) -> bytes:
        return self._root

    @property
    def block_hash(self) -> bytes:
        return self._block_hash

    def check_tx(self, tx: bytes) -> TxCheck:
        """Stateless admission check; remembers good envelopes so apply skips re-verifying."""
        parsed = self._parse(tx)
        if parsed.tx is None:
            return TxCheck(parsed.tx_id, False, parsed.reason.name, parsed.detail,
                           parsed.sender, parsed.nonce)
        return TxCheck(parsed.tx_id, True, "", "", parsed.sender, parsed.nonce)

    def apply_block(self, block: Block) -> AppliedBlock:
        return self.apply(block).applied

    # ------------------------------------------------------------ queries
    def account(self, address: bytes) -> Account | None:
        return self._accounts.get(address)

    def accounts(self) -> Iterable[Account]:
        return self._accounts.values()

    def prove_account(self, address: bytes) -> AccountProof:
        """Inclusion (or absence) proof against `state_root`; see state_tree.verify_account_proof."""
        return self._tree.prove(address)

    # ------------------------------------------------------------ apply
    def _parse(self, tx: bytes) -> Parsed:
        # The signature result depends only on the envelope bytes, so caching it by those
        # bytes keeps apply deterministic while checking each signature once per node.
        if self._verifier is None:
            return parse_tx(tx, self.chain_id, self._currencies, None)
        envelope_hash = hashlib.sha256(tx).digest()
        if envelope_hash in self._verified:
            self._verified.move_to_end(envelope_hash)
            return parse_tx(tx, self.chain_id, self._currencies, None)
        parsed = parse_tx(tx, self.chain_id, self._currencies, self._verifier)
        if parsed.tx is not None:
            self._verified[envelope_hash] = None
            if len(self._verified) > self._verified_cache_max:
                self._verified.popitem(last=False)
        return parsed

    def apply(self, block: Block) -> BlockResult:
        """Apply the next block; returns receipts, the new state root and changed accounts."""
        header = block.header
        if header.chain_id != self.chain_id:
            raise LedgerError(f"block for chain {header.chain_id!r}, ledger is {self.chain_id!r}")
        if header.height != self._height + 1:
            raise LedgerError(f"block {header.height} applied at height {self._height}")
        work: dict[bytes, _Work] = {}
        seen: set[bytes] = set()
        outcomes = []
        for index, data in enumerate(block.txs):
            parsed = self._parse(data)
            reason = parsed.reason
            if parsed.tx is not None:
                if parsed.tx_id in seen:
                    reason = Reason.DUPLICATE
                else:
                    reason = self._execute(parsed.tx, header.timestamp_ms, work)
            if reason is Reason.OK:
                seen.add(parsed.tx_id)
                outcomes.append(TxOutcome(parsed.tx_id, index, True, ""))
            else:
                outcomes.append(TxOutcome(parsed.tx_id, index, False, reason.name))
        nonces = tuple((address, w.nonce) for address, w in sorted(work.items())
                       if w.nonce > w.base.nonce)
        changes = self._fold(work)
        self._root = self._tree.root()
        self._height, self._block_hash = header.height, block.block_hash
        applied = AppliedBlock(header.height, block.block_hash, self._root, tuple(outcomes),
                               nonces)
        return BlockResult(applied, changes)

    def _fold(self, work: dict[bytes, _Work]) -> tuple[tuple[bytes, bytes], ...]:
        changes = []
        for address in sorted(work):
            account = work[address].freeze()
            if account == self._accounts.get(address):
                continue  # touched but unchanged (e.g. refused halfway): no write, no hash
            data = encode_account(account)
            self._accounts[address] = account
            self._tree.set(address, data)
            changes.append((address, data))
        return tuple(changes)

    def _get(self, address: bytes, work: dict[bytes, _Work]) -> _Work | None:
        entry = work.get(address)
        if entry is None:
            base = self._accounts.get(address)
            if base is None:
                return None
            entry = work[address] = _Work(base)
        return entry

    def _execute(self, tx: Tx, now_ms: int, work: dict[bytes, _Work]) -> Reason:
        """Stateful checks and effects of one statelessly valid tx; all-or-nothing."""
        if tx.valid_until_ms and now_ms > tx.valid_until_ms:
            return Reason.EXPIRED
        if tx.kind == KIND_CREATE:
            return self._create(tx, work)
        sender = self._get(tx.sender, work)
        if sender is None:
            return Reason.UNKNOWN_ACCOUNT
        if tx.nonce != sender.nonce + 1:
            return Reason.NONCE_MISMATCH
        if tx.kind == KIND_TRANSFER:
            reason = self._move(sender, tx, work)
        elif tx.kind == KIND_ISSUE:
            reason = self._issue(tx, work)
        elif tx.kind == KIND_REDEEM:
            reason = self._redeem(sender, tx)
        else:  # parse_tx only yields the kinds above
            raise LedgerError(f"unknown tx kind {tx.kind}")
        if reason is Reason.OK:
            sender.nonce = tx.nonce
        return reason

    def _create(self, tx: Tx, work: dict[bytes, _Work]) -> Reason:
        if tx.sender in work or tx.sender in self._accounts:
            return Reason.ACCOUNT_EXISTS
        account = Account(tx.sender, tx.scheme, tx.public_key, 0, ())
        entry = work[tx.sender] = _Work(account)
        entry.nonce = tx.nonce
        return Reason.OK

    def _move(self, sender: _Work, tx: Tx, work: dict[bytes, _Work]) -> Reason:
        recipient = self._get(tx.to, work)
        if recipient is None:
            return Reason.UNKNOWN_RECIPIENT
        rest = checked_sub(sender.balances.get(tx.currency, 0), tx.amount)
        if rest is None:
            return Reason.INSUFFICIENT_FUNDS
        credited = checked_add(recipient.balances.get(tx.currency, 0), tx.amount)
        if credited is None:
            return Reason.OVERFLOW
        sender.balances[tx.currency] = rest
        recipient.balances[tx.currency] = credited
        return Reason.OK

    def _issue(self, tx: Tx, work: dict[bytes, _Work]) -> Reason:
        # parse_tx admits only genesis currencies, and each has an entry (maybe empty)
        if tx.sender not in self._issuers[tx.currency]:
            return Reason.NOT_ISSUER
        recipient = self._get(tx.to, work)
        if recipient is None:
            return Reason.UNKNOWN_RECIPIENT
        credited = checked_add(recipient.balances.get(tx.currency, 0), tx.amount)
        if credited is None:
            return Reason.OVERFLOW
        recipient.balances[tx.currency] = credited
        return Reason.OK

    def _redeem(self, sender: _Work, tx: Tx) -> Reason:
        if tx.sender not in self._issuers[tx.currency]:
            return Reason.NOT_ISSUER
        rest = checked_sub(sender.balances.get(tx.currency, 0), tx.amount)
        if rest is None:
            return Reason.INSUFFICIENT_FUNDS
        sender.balances[tx.currency] = rest
        return Reason.OK
