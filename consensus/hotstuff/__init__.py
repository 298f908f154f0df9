"""HotStuff in its 2-chain production form (Jolteon / DiemBFT v4) as a pure sans-IO engine."""
from consensus.api import register_engine
from consensus.hotstuff.engine import HotStuffEngine
from consensus.hotstuff.messages import (
    NewView,
    Proposal,
    QuorumCertificate,
    Timeout,
    TimeoutCertificate,
    Vote,
)

register_engine("hotstuff", HotStuffEngine)

__all__ = [
    "HotStuffEngine",
    "NewView",
    "Proposal",
    "QuorumCertificate",
    "Timeout",
    "TimeoutCertificate",
    "Vote",
]
