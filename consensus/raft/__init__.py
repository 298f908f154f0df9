"""Raft consensus engine (Ongaro & Ousterhout 2014; Ongaro's thesis 2014).

Public names: `RaftEngine` (registered as "raft") and the wire messages in
`consensus.raft.messages`. Reads and leadership transfer are contract inputs
(`consensus.api.ReadRequest`, `consensus.api.TransferLeadership`), fed through `step`.
"""
from consensus.api import register_engine
from consensus.raft.engine import RaftEngine

register_engine("raft", RaftEngine)

__all__ = ["RaftEngine"]
