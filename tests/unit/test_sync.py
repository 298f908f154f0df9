"""Catch-up serving: one answer never carries more than SYNC_BLOCKS_MAX blocks, whatever a
peer asks for (a peer's request is input, and every input has a limit)."""
from __future__ import annotations

from qenex_node.core.sync import SYNC_BLOCKS_MAX, SyncRequest, blocks_to_serve


def test_requested_block_count_is_capped_and_never_negative():
    assert blocks_to_serve(SyncRequest(1, 2**32 - 1, 0)) == SYNC_BLOCKS_MAX
    assert blocks_to_serve(SyncRequest(1, 5, 0)) == 5
    assert blocks_to_serve(SyncRequest(1, -3, 0)) == 0
