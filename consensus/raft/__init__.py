"""Raft consensus engine (Ongaro & Ousterhout 2014; Ongaro's thesis 2014).

Public names: `RaftEngine` (registered as "raft"), its operator methods
`request_read(read_id)` and `transfer_leadership(target)`, and the wire messages in
`consensus.raft.messages`.
"""
from consensus.api import register_engine
from consensus.raft.engine import RaftEngine

register_engine("raft", RaftEngine)

__all__ = ["RaftEngine"]
