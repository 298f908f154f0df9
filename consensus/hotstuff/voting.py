"""The happy path: PROPOSAL, VOTE to the next leader, QC (Jolteon §3; DiemBFT v4 §4-5).

Theory of operation
-------------------
The leader of round r proposes a block extending its highest QC: with QC(r - 1) the
round follows directly; after a failed round it also carries TC(r - 1), and the QC must
be at least as high as every high QC named in that TC. A replica checks the proposer,
the round, the block, the QC and the TC, learns the certificates (which may advance its
round and commit blocks, chain.py), asks the safety rules (safety.py) for a vote,
persists the new safety data and sends the vote to the leader of round r + 1 only - the
linear pattern: one broadcast and n unicasts per block. The next leader forms QC(r) from
2f + 1 matching votes, enters round r + 1 and proposes at once.

Rounds without transactions. The driver offers batches (`Propose`) only at block
intervals and only when there are transactions; a block with transactions becomes final
only two certified rounds later, and every replica learns so only from the proposal that
carries that QC. So a leader also proposes an empty block while some block with
transactions is not yet final by its high QC - as PBFT's null batches keep its sequence
gap-free. Once its QC makes everything final, it broadcasts that QC as sync info (a
NEW-VIEW without timeout) instead of one more block, so every replica commits the last
block as well, and an idle cluster is quiet.

Forwarding. The driver offers batches to every replica at the same block intervals, and
leaders rotate every round (several rounds per interval under load). Transactions that a
driver forwarded into the leader's *mempool* would reach its engine only at the next
interval, when that replica no longer leads - they would chase the leader for ever. So a
replica that will not propose next accepts the batch and hands it on engine to engine
(`Batch`) to the replica that will (`status().leader`: this round's leader until this
replica voted in the round, then the next round's leader, which collects the votes); that
replica queues it (bounded) and proposes it as soon as its round starts. A batch that
missed its leader is forwarded at most BATCH_HOPS_MAX times, then kept for the holder's
own turn. Batches are not handed to a replica that sent no timeout to the last TC until
it is heard from again (it may have crashed): they wait here and go to the next proposer. If a
batch is lost with a crashed leader anyway, the driver's mempool offers the transactions
again after its proposal timeout.

Ordering each transaction once. A transaction reaches leaders more than once (a handed
copy and its holder's own turn, a batch re-handed after RESEND_ROUNDS, the mempool's
re-offer), and the 2-chain rule makes a whole branch final at once. So a leader leaves
out of its block what the chain it extends already carries (its uncommitted ancestors;
if one is missing here it proposes an empty block and keeps the batches) and what it saw
final (`final_txs`, bounded). Replicas often learn of commits by catch-up, which never
shows them the transactions: a `Batch` therefore says through which height its
transactions are known absent from committed blocks, every hop drops what it knows final
and raises that height to its own tip, and a batch older than the blocks a replica saw
(`final_from`) is dropped - its origin's mempool, which knows every applied block, offers
it again (`vouch`).

Why not the driver's forwarding (`Rejected(NOT_LEADER)`, which also runs admission)?
Measured on tests/sim/test_hotstuff_sim.py: 22 of 27 runs fail liveness, the happy path
commits 41-58 % - forwarded transactions land in a mempool one block interval later, when
that replica no longer leads, and chase the leader. `Batch` skips admission, so a
byzantine replica can hand invalid transactions to an honest leader; it can put them in
its own blocks anyway, and the ledger refuses them when it applies the block.
"""
from __future__ import annotations

from consensus.api import EffectsBuilder, Persist, Propose, RejectReason, Send
from consensus.hotstuff.certificates import check_qc, check_tc
from consensus.hotstuff.chain import announced_height, chain_txs, observe_qc, remember_block
from consensus.hotstuff.messages import Batch, NewView, Proposal, QuorumCertificate, Vote
from consensus.hotstuff.pacemaker import advance_round, observe_tc
from consensus.hotstuff.safety import Refusal, VoteRequest, decide_vote
from consensus.hotstuff.state import (
    BATCH_HOPS_MAX,
    BLOCKS_MAX,
    KEY_PROPOSAL,
    KEY_SAFETY,
    OFFERED_BATCHES_MAX,
    QUEUED_BATCHES_MAX,
    RESEND_ROUNDS,
    ROUNDS_AHEAD_MAX,
    Replica,
    tx_key,
)
from consensus.types import NodeId, SignedMessage, make_block


# ------------------------------------------------------------------ leader
def on_propose(r: Replica, fx: EffectsBuilder, event: Propose) -> None:
    size = sum(len(tx) for tx in event.txs)
    if len(event.txs) > r.config.batch_txs_max or size > r.config.batch_bytes_max:
        fx.reject(RejectReason.OVER_LIMIT, None, "batch over limit")
        return
    r.last_timestamp_ms = max(r.last_timestamp_ms, event.timestamp_ms)
    # The driver's mempool holds nothing its ledger committed, and the ledger has applied
    # every block this engine committed before this input: absent through our tip.
    take_batch(r, fx, tuple(event.txs), 0, None, r.committed_height)


def on_batch(r: Replica, fx: EffectsBuilder, sender: NodeId, batch: Batch,
             signature: bytes) -> None:
    size = sum(len(tx) for tx in batch.txs)
    if len(batch.txs) > r.config.batch_txs_max or size > r.config.batch_bytes_max \
            or batch.hops > BATCH_HOPS_MAX:
        fx.reject(RejectReason.OVER_LIMIT, sender, "batch over limit")
        return
    take_batch(r, fx, batch.txs, batch.hops, sender, batch.absent_through_height)


def vouch(r: Replica, txs: tuple[bytes, ...], absent_through: int
          ) -> tuple[tuple[bytes, ...], int] | None:
    """What of a batch known absent from committed blocks through `absent_through` is
    still not final, and through which height that is now known - or None when this
    replica cannot tell: a block above `absent_through` reached it only by catch-up (or
    before a restart), so it never saw that block's transactions.

    Why: batches travel engine to engine while blocks commit - re-handed after
    RESEND_ROUNDS, forwarded again after a missed turn, offered again by the driver's
    mempool - and a replica commonly learns of commits by catch-up. Proposing a
    transaction that is already final orders it twice. The sender's height and this
    replica's complete record above it (`final_txs`, from `final_from` on) together cover
    every committed block. An unverifiable batch is dropped: its origin's mempool, which
    knows every block its ledger applied, offers what is still pending again."""
    if absent_through + 1 < r.final_from:
        return None
    kept = tuple(tx for tx in txs if tx_key(tx) not in r.final_txs)
    return kept, max(absent_through, r.committed_height)


def take_batch(r: Replica, fx: EffectsBuilder, txs: tuple[bytes, ...], hops: int,
               sender: NodeId | None, absent_through: int) -> None:
    """Keep a batch for our own next proposal, or hand it to the replica proposing next;
    what is already final is left out at every hop (vouch)."""
    checked = vouch(r, txs, absent_through)
    if checked is None:
        fx.reject(RejectReason.STALE, sender, "batch older than the transactions known final")
        return
    txs, absent_through = checked
    if not txs:
        return
    proposer = r.next_proposer()
    if proposer != r.me and hops < BATCH_HOPS_MAX and not r.distrusted(proposer):
        fx.send.append(Send(proposer, Batch(txs, hops + 1, absent_through)))
        if hops == 0:
            # Our own clients' batch: kept until it commits (resend_offered). When the
            # list is full the oldest is dropped; the driver's mempool still re-offers it.
            r.offered = [*r.offered[-(OFFERED_BATCHES_MAX - 1):],
                         (r.round, txs, absent_through)]
        return
    if len(r.queued) >= QUEUED_BATCHES_MAX:
        fx.reject(RejectReason.OVER_LIMIT, sender, "proposal queue full")
        return
    r.queued.append((txs, absent_through))
    r.queued_round = r.round


def forward_queued(r: Replica, fx: EffectsBuilder) -> None:
    """Batches kept for a turn that passed (the round moved on without our proposal) go
    to whoever proposes next, so none waits for this replica's next turn. Only once the
    round has moved since they were kept: two replicas that disagree on who is next must
    not bounce a batch between them for ever."""
    proposer = r.next_proposer()
    if r.queued and r.round > r.queued_round and proposer != r.me \
            and not r.distrusted(proposer):
        for txs, absent_through in r.queued:
            checked = vouch(r, txs, absent_through)
            if checked is not None and checked[0]:
                fx.send.append(Send(proposer, Batch(checked[0], BATCH_HOPS_MAX - 1,
                                                    checked[1])))
        r.queued.clear()
    resend_offered(r, fx)


def resend_offered(r: Replica, fx: EffectsBuilder) -> None:
    """A batch of our own clients not final RESEND_ROUNDS rounds after we handed it on
    went to a leader that lost it (crashed, or byzantine and censoring): hand it to the
    current next proposer. Many rounds pass during a stall, so this is much sooner than
    the driver's mempool timeout, and a byzantine next proposer cannot keep it forever."""
    due = [item for item in r.offered if r.round - item[0] >= RESEND_ROUNDS]
    if not due:
        return
    r.offered = [item for item in r.offered if r.round - item[0] < RESEND_ROUNDS]
    for _, txs, absent_through in due:
        take_batch(r, fx, txs, 0, None, absent_through)


def can_propose(r: Replica) -> bool:
    """This replica leads the round, has not proposed in it, and holds a QC it may
    extend: QC(round - 1), or after TC(round - 1) a QC as high as the TC's."""
    if r.leader() != r.me or not r.my_round_open():
        return False
    if r.high_qc.round == r.round - 1:
        return True
    tc = r.high_tc
    return tc is not None and tc.round == r.round - 1 and r.high_qc.round >= tc.high_qc_round()


def next_batch(r: Replica, ordered: set[bytes]) -> tuple[bytes, ...]:
    """As many queued batches as fit in one block, oldest first, without what the new
    block's chain already orders (`ordered`: its uncommitted ancestors), what is final
    (vouch) and repeats. Batches reach a leader more than once - its own turn and a
    handed-on copy, a batch re-handed after RESEND_ROUNDS - and a block extending a chain
    that already carries a transaction would order it twice once both are final (the
    2-chain rule commits the whole branch, Jolteon §3)."""
    txs: list[bytes] = []
    seen = set(ordered)
    size = 0
    while r.queued:
        batch, absent_through = r.queued[0]
        checked = vouch(r, batch, absent_through)
        fresh = [] if checked is None else [tx for tx in checked[0] if tx not in seen]
        extra = sum(len(tx) for tx in fresh)
        if txs and (len(txs) + len(fresh) > r.config.batch_txs_max
                    or size + extra > r.config.batch_bytes_max):
            break
        r.queued.pop(0)
        for tx in fresh:
            if tx not in seen:
                seen.add(tx)
                txs.append(tx)
                size += len(tx)
    return tuple(txs)


def try_propose(r: Replica, fx: EffectsBuilder) -> None:
    """Propose the queued batches, or an empty block while the high QC does not yet make
    every block with transactions (or a read's index, read_barrier.py) final; once it
    does, tell everyone (sync info)."""
    if not can_propose(r):
        return
    # A QC formed from votes may certify a block whose proposal has not arrived here yet:
    # it may carry transactions, so extend it rather than let the round time out.
    unknown = r.high_qc.block_hash not in r.blocks and r.high_qc.block_hash != r.committed_hash
    final = max(r.high_qc.commits_height(), r.committed_height)
    if not r.queued and not unknown and r.wanted_height() <= final:
        if r.committed_height > announced_height(r) and r.announced_round < r.high_qc.round:
            r.announced_round = r.high_qc.round
            fx.send.append(Send(None, NewView(None, r.high_qc, None)))
        return
    qc = r.high_qc
    ordered = chain_txs(r, qc.block_hash)
    # A block of the chain we extend is missing here, so we cannot tell what it already
    # orders: propose an empty block and keep the batches for when we can tell.
    txs = () if ordered is None else next_batch(r, ordered)
    tc = r.high_tc if qc.round != r.round - 1 else None
    block = make_block(r.config.chain_id, qc.height + 1, qc.block_hash, txs, r.me,
                       r.last_timestamp_ms, r.applied_height, r.applied_root)
    proposal = Proposal(r.round, block, qc, tc)
    r.my_proposal = proposal
    # Durable before it is signed: a restarted leader re-sends it, never another one.
    fx.persist.append(Persist(KEY_PROPOSAL, proposal))
    fx.send.append(Send(None, proposal))


# ------------------------------------------------------------------ replicas
def proposal_problem(r: Replica, sender: NodeId, p: Proposal) -> tuple[RejectReason, str] | None:
    if sender != r.leader(p.round) or p.block.header.proposer != sender:
        return RejectReason.WRONG_LEADER, f"round {p.round} is led by {r.leader(p.round)}"
    if p.round > r.round + ROUNDS_AHEAD_MAX or p.round + ROUNDS_AHEAD_MAX < r.round:
        return RejectReason.FUTURE if p.round > r.round else RejectReason.STALE, \
            f"proposal for round {p.round}, replica in {r.round}"
    seen = r.proposals.get(p.round)
    if seen is not None:
        same = seen == p.block.block_hash
        return (RejectReason.DUPLICATE if same else RejectReason.CONFLICT,
                f"second proposal for round {p.round}")
    qc, tc = p.justify, p.last_round_tc
    if p.round <= qc.round or (p.round != qc.round + 1 and (tc is None or tc.round != p.round - 1)):
        return RejectReason.MALFORMED, "round justified by neither its QC nor TC(round - 1)"
    return block_problem(r, p)


def block_problem(r: Replica, p: Proposal) -> tuple[RejectReason, str] | None:
    header, qc = p.block.header, p.justify
    if header.height != qc.height + 1 or header.parent_hash != qc.block_hash:
        return RejectReason.INVALID_BLOCK, "block does not extend the block its QC certifies"
    if header.height <= r.committed_height:
        return RejectReason.STALE, f"block height {header.height} already committed"
    if header.chain_id != r.config.chain_id or not p.block.tx_root_matches():
        return RejectReason.INVALID_BLOCK, "wrong chain id or tx root"
    if len(p.block.txs) > r.config.batch_txs_max or \
            p.block.payload_bytes() > r.config.batch_bytes_max:
        return RejectReason.OVER_LIMIT, "batch over limit"
    if len(r.blocks) >= BLOCKS_MAX:
        return RejectReason.OVER_LIMIT, "block tree full"
    problem = check_qc(r.config, qc)
    if problem is None and p.last_round_tc is not None:
        problem = check_tc(r.config, p.last_round_tc)
    if problem is not None:
        return RejectReason.BAD_SIGNATURE, problem
    return None


def on_proposal(r: Replica, fx: EffectsBuilder, sender: NodeId, p: Proposal,
                signature: bytes) -> None:
    problem = proposal_problem(r, sender, p)
    if problem is not None:
        if problem[0] == RejectReason.CONFLICT:
            r.equivocators.add(sender)  # two signed proposals for one round
        fx.reject(problem[0], sender, problem[1])
        return
    observe_qc(r, fx, p.justify, sender)
    advance_round(r, fx, p.justify.round + 1, via_qc=True)
    if p.last_round_tc is not None:
        observe_tc(r, fx, p.last_round_tc)
    r.proposals[p.round] = p.block.block_hash
    remember_block(r, fx, p.block, p.justify)
    if p.round != r.round:
        # Late (the next leader formed its QC from votes first): keep the block, which a
        # commit will need, but vote only in the current round.
        fx.reject(RejectReason.STALE, sender, f"round {p.round} left for {r.round}")
        return
    tc = p.last_round_tc
    request = VoteRequest(p.round, p.block.height, p.block.block_hash, p.justify.round,
                          p.justify.block_hash, tc.round if tc is not None else None,
                          tc.high_qc_round() if tc is not None else 0)
    decision = decide_vote(r.safety, r.me, request)
    if isinstance(decision, Refusal):
        fx.reject(RejectReason.STALE, sender, f"safety rules: {decision.reason}")
        return
    r.safety, vote = decision
    fx.persist.append(Persist(KEY_SAFETY, r.safety))
    fx.send.append(Send(r.leader(p.round + 1), vote))


# ------------------------------------------------------------------ next leader
def on_vote(r: Replica, fx: EffectsBuilder, sender: NodeId, vote: Vote,
            signature: bytes) -> None:
    if vote.voter != sender or vote.round <= vote.parent_round or vote.height < 1:
        fx.reject(RejectReason.MALFORMED, sender, "vote names another voter or bad rounds")
        return
    if r.leader(vote.round + 1) != r.me:
        fx.reject(RejectReason.NOT_LEADER, sender, f"votes of round {vote.round} go to "
                  f"{r.leader(vote.round + 1)}")
        return
    if vote.round <= r.high_qc.round:
        return  # a late vote: the round is certified already
    if vote.round > r.round + ROUNDS_AHEAD_MAX:
        fx.reject(RejectReason.FUTURE, sender, f"vote for round {vote.round}, replica in "
                  f"{r.round}")
        return
    votes = r.votes.setdefault(vote.round, {})
    previous = votes.get(sender)
    if previous is not None:
        same = previous.message == vote
        if not same:
            r.equivocators.add(sender)  # two signed votes for one round
        fx.reject(RejectReason.DUPLICATE if same else RejectReason.CONFLICT, sender,
                  f"second vote for round {vote.round}")
        return
    votes[sender] = SignedMessage(sender, vote, signature)
    matching = sorted((s for s in votes.values() if s.message == vote.__class__(
        vote.round, vote.height, vote.block_hash, vote.parent_round, vote.parent_hash,
        s.sender)), key=lambda s: s.sender)
    if len(matching) < r.quorum:
        return
    qc = QuorumCertificate(vote.round, vote.height, vote.block_hash, vote.parent_round,
                           vote.parent_hash, tuple(matching[:r.quorum]))
    for old in [n for n in r.votes if n <= vote.round]:
        del r.votes[old]
    observe_qc(r, fx, qc, None)
    advance_round(r, fx, qc.round + 1, via_qc=True)
