"""PBFT (Castro & Liskov, OSDI 1999 / TOCS 2002) as a pure sans-IO engine."""
from consensus.api import register_engine
from consensus.pbft.engine import PbftEngine
from consensus.pbft.messages import (
                                     Checkpoint,
                                     Commit,
                                     NewView,
                                     Prepare,
                                     PreparedCertificate,
                                     PrePrepare,
                                     SlotStatus,
                                     Status,
                                     ViewChange,
)

register_engine("pbft", PbftEngine)

__all__ = [
                                     "Checkpoint",
                                     "Commit",
                                     "NewView",
                                     "PbftEngine",
                                     "PrePrepare",
                                     "Prepare",
                                     "PreparedCertificate",
                                     "SlotStatus",
                                     "Status",
                                     "ViewChange",
]
