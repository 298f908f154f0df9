"""PBFT (Castro & Liskov, OSDI 1999 / TOCS 2002) as a pure sans-IO engine."""
from consensus.api import register_engine
from consensus.pbft.engine import PbftEngine
from consensus.pbft.messages import (Checkpoint, Commit, NewView, PrePrepare, Prepare,
                                     PreparedCertificate, ViewChange)

register_engine("pbft", PbftEngine)

__all__ = ["PbftEngine", "PrePrepare", "Prepare", "Commit", "Checkpoint",
           "PreparedCertificate", "ViewChange", "NewView"]
