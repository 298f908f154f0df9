"""Storage rules a user relies on, one rule per test (found by mutation testing, issue 23)."""
from __future__ import annotations
