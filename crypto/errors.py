"""Typed errors of the crypto package. Each message is one line that says what to do."""
from __future__ import annotations


class KeyStoreError(RuntimeError):
    """The node key cannot be created or loaded (missing device, wrong secret, bad file)."""


class GuardError(RuntimeError):
    """The double-sign guard cannot start (corrupt, foreign or rolled-back guard file)."""


class DoubleSignRefused(RuntimeError):
    """The guard refused to sign: it would equivocate. A bug or an attack, never routine."""
