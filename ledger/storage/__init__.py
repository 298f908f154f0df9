"""Durable storage for blocks, receipts, accounts and engine state (LMDB or in-memory).

Only this package may import lmdb; the rest of `ledger/` is pure.
"""
