"""Invariant checkers: safety on every commit and signature, liveness at the end.

Safety checks run online (a violation is recorded with the time it happened); liveness is
judged once the run ends. Byzantine nodes are excluded from every check: they may do
anything, what matters is that honest nodes stay consistent.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from consensus.types import GENESIS_HASH
from ledger.receipts import AppliedBlock
from qenex_node.core.app import tx_id
from qenex_node.core.sync import CommittedBlock


@dataclass(frozen=True, slots=True)
class InvariantResult:
    name: str
    ok: bool
    detail: str = ""


SAFETY = ("agreement", "chain_integrity", "no_double_commit", "state_roots",
          "no_equivocation", "commit_order", "linearizable_reads")


@dataclass(slots=True)
class Checker:
    honest: frozenset[int]
    by_height: dict[int, tuple[bytes, bytes, int]] = field(default_factory=dict)
    last_hash: dict[int, bytes] = field(default_factory=dict)
    committed_tx_height: dict[int, dict[bytes, int]] = field(default_factory=dict)
    signed: dict[tuple[int, object], bytes] = field(default_factory=dict)
    violations: dict[str, str] = field(default_factory=dict)  # first violation per check
    highest_committed: int = 0  # the highest height any honest node has applied

    def fail(self, name: str, detail: str) -> None:
        self.violations.setdefault(name, detail)

    def on_commit(self, node: int, item: CommittedBlock, applied: AppliedBlock) -> None:
        if node not in self.honest:
            return
        block = item.block
        height = block.height
        self.highest_committed = max(self.highest_committed, height)
        seen = self.by_height.get(height)
        if seen is None:
            self.by_height[height] = (block.block_hash, applied.state_root, node)
        else:
            if seen[0] != block.block_hash:
                self.fail("agreement", f"height {height}: node {seen[2]} committed "
                          f"{seen[0].hex()[:12]}, node {node} {block.block_hash.hex()[:12]}")
            elif seen[1] != applied.state_root:
                self.fail("state_roots", f"height {height}: nodes {seen[2]} and {node} "
                          "applied the same block to different state roots")
        parent = self.last_hash.get(node, GENESIS_HASH)
        if block.header.parent_hash != parent or not block.tx_root_matches():
            self.fail("chain_integrity", f"node {node} height {height}: parent or tx root "
                      "does not match its chain")
        self.last_hash[node] = block.block_hash
        self._check_no_double_commit(node, item)

    def _check_no_double_commit(self, node: int, item: CommittedBlock) -> None:
        """A transaction id in two committed blocks is ordered twice, whatever its receipt
        says (the app may refuse the second copy, hiding the bug). Blocks proposed by a
        byzantine node are exempt: it may re-propose anything, and honest nodes cannot
        stop it from ordering a committed transaction again."""
        txs = self.committed_tx_height.setdefault(node, {})
        height = item.block.height
        honest_proposer = item.block.header.proposer in self.honest
        for tx in item.block.txs:
            ident = tx_id(tx)
            first = txs.get(ident)
            if first is not None and honest_proposer:
                self.fail("no_double_commit", f"node {node}: tx {ident.hex()[:12]} ordered "
                          f"at heights {first} and {height}")
            txs.setdefault(ident, height)

    def on_read(self, node: int, read_id: int, floor: int, served_height: int) -> None:
        """A linearizable read served by an honest node from its state at `served_height`,
        begun when `floor` was the highest height committed anywhere: it must reflect
        every block committed before it began (Herlihy & Wing's real-time order)."""
        if node in self.honest and served_height < floor:
            self.fail("linearizable_reads", f"read {read_id} on node {node} served at "
                      f"height {served_height}; height {floor} was committed before it began")

    def on_sign(self, node: int, position: object, digest: bytes) -> None:
        key = (node, position)
        previous = self.signed.get(key)
        if previous is None:
            self.signed[key] = digest
        elif previous != digest:
            self.fail("no_equivocation", f"node {node} signed two different messages at "
                      f"position {position!r}")

    def results(self, liveness: InvariantResult) -> tuple[InvariantResult, ...]:
        out = [InvariantResult(name, name not in self.violations,
                               self.violations.get(name, "")) for name in SAFETY]
        out.append(liveness)
        return tuple(out)
