"""Liveness after GST, judged from what the run offered and what honest nodes committed.

Dwork, Lynch & Stockmeyer's partial synchrony: safety must hold always, liveness only
after the global stabilisation time (GST), when the last temporary fault is over. A run
is live when honest nodes commit at least `liveness_fraction_min` (90 %) of the
transactions offered after GST, and the first commit after GST comes within the
liveness window. Faults that last the whole run (permanent crashes, byzantine nodes,
packet loss) are part of the weather, not of GST: with at most f of them the protocol
must live with them from the start. With more than f, liveness is *not expected* and the
run reports that instead of a pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from simulations.invariants import InvariantResult


@dataclass(slots=True)
class LivenessLedger:
    """Offered transactions (id -> submit time) and the first honest commit of each."""
    offered_ms: dict[bytes, int] = field(default_factory=dict)
    committed_ms: dict[bytes, int] = field(default_factory=dict)
    commit_times_ms: list[int] = field(default_factory=list)  # every new honest height

    def offer(self, tx_id: bytes, now_ms: int) -> None:
        self.offered_ms.setdefault(tx_id, now_ms)

    def commit(self, tx_ids: list[bytes], now_ms: int) -> None:
        for tx_id in tx_ids:
            if tx_id in self.offered_ms:
                self.committed_ms.setdefault(tx_id, now_ms)

    def new_height(self, now_ms: int) -> None:
        self.commit_times_ms.append(now_ms)


@dataclass(frozen=True, slots=True)
class LivenessReport:
    expected: bool
    ok: bool
    judged: bool
    gst_ms: int
    offered_after_gst: int
    committed_after_gst: int
    committed_fraction_after_gst: float | None
    recovery_ms: int | None
    detail: str

    def summary(self) -> dict[str, object]:
        return {"expected": self.expected, "ok": self.ok, "judged": self.judged,
                "gst_ms": self.gst_ms, "offered_after_gst": self.offered_after_gst,
                "committed_after_gst": self.committed_after_gst,
                "committed_fraction_after_gst": self.committed_fraction_after_gst,
                "recovery_ms": self.recovery_ms, "detail": self.detail}

    def invariant(self) -> InvariantResult:
        return InvariantResult("liveness", self.ok, self.detail)


def judge(ledger: LivenessLedger, *, expected: bool, gst_ms: int, duration_ms: int,
          window_ms: int, fraction_min: float) -> LivenessReport:
    after = [t for t, at in ledger.offered_ms.items() if at >= gst_ms]
    if not after:
        after = list(ledger.offered_ms)  # everything was offered before GST: all of it
    done = sum(1 for t in after if t in ledger.committed_ms)
    fraction = round(done / len(after), 4) if after else None
    recovery = next((t - gst_ms for t in ledger.commit_times_ms if t >= gst_ms), None)
    base: dict = {"gst_ms": gst_ms, "offered_after_gst": len(after),
                  "committed_after_gst": done, "committed_fraction_after_gst": fraction,
                  "recovery_ms": recovery}
    if not expected:
        return LivenessReport(False, True, False, detail="not expected: more faults than "
                              "the engine tolerates", **base)
    if duration_ms - gst_ms < window_ms or not after:
        return LivenessReport(True, True, False, detail="not judged: no window after GST "
                              "or nothing offered", **base)
    if recovery is None or recovery > window_ms:
        return LivenessReport(True, False, True, detail=f"no commit within {window_ms} ms "
                              f"after GST at {gst_ms} ms", **base)
    if fraction is not None and fraction < fraction_min:
        return LivenessReport(True, False, True, detail=f"committed {done} of {len(after)} "
                              f"transactions offered after GST ({fraction:.1%} < "
                              f"{fraction_min:.0%})", **base)
    return LivenessReport(True, True, True, detail="", **base)
