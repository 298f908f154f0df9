"""GetEvidence end to end: blocks carrying evidence committed through the runtime's storage
step into LMDB, the runtime backend behind the real gRPC server, the SDK and `qenex query
evidence` in front. Nothing is stubbed: a real Tendermint replica, real ledger, real
store; the evidence is signed with the simulator's deterministic signer."""
from __future__ import annotations

import json

import pytest

from consensus import canonical
from consensus.api import EngineConfig, create_engine, engine_class
from consensus.tendermint.messages import Vote, VoteStep
from consensus.types import Certificate, Validator, ValidatorSet
from crypto.simulated import SimulatedVerifier
from ledger.tx import build_transfer
from qenex_node.core.mempool import Mempool
from qenex_node.core.replica import Replica
from qenex_node.runtime.backend import NodeIdentity, RuntimeBackend
from qenex_node.runtime.metrics import NodeMetrics
from qenex_node.runtime.storage import LedgerStorage, evidence_extractor
from qenex_node.sdk import QenexClient, QenexError
from tests.unit.evidence_helpers import SEED, ServedBackend, block_with, piece
from tests.unit.ledger_helpers import CHAIN, ED, address, make_genesis, seed
from tests.unit.test_client_cli import run

NODES = 4
# height -> the evidence its block carries (height 2 carries only a transfer)
CHAIN_EVIDENCE = {1: [piece(2, 1)], 2: [],
                  3: [piece(1, 2), piece(2, 2, round_=1)],
                  4: [piece(2, 3, step=VoteStep.PREVOTE)]}


def verifier() -> SimulatedVerifier:
    return SimulatedVerifier(SEED, NODES, CHAIN)


def replica() -> Replica:
    validators = ValidatorSet(tuple(Validator(i, verifier().public_key(i))
                                    for i in range(NODES)))
    config = EngineConfig(node_id=0, validators=validators, chain_id=CHAIN,
                          verifier=verifier(), seed=SEED)
    return Replica(engine=create_engine("tendermint", config), config=config, mempool=Mempool())


@pytest.fixture
def storage(tmp_path):
    opened = LedgerStorage.open(str(tmp_path / "ledger"), make_genesis(), 1 << 20,
                                evidence_extractor(engine_class("tendermint")))
    transfer = build_transfer(CHAIN, ED, seed(1), 1, address(2), 5, "USD")
    for height, pieces in sorted(CHAIN_EVIDENCE.items()):
        block = block_with(opened.ledger, pieces, () if pieces else (transfer,))
        opened.write_step((), [(block, Certificate("test", height, block.block_hash, ()))])
    yield opened
    opened.close()


@pytest.fixture
def node(storage):
    backend = RuntimeBackend(identity=NodeIdentity(0, CHAIN, "tendermint"), storage=storage,
                             replica=replica(), metrics=NodeMetrics(),
                             peers_connected=lambda: 0, is_ready=lambda: True)
    with ServedBackend(backend) as served:
        yield served


@pytest.fixture
def client(node):
    with QenexClient(node.target, timeout_s=5) as c:
        yield c


def all_pages(client: QenexClient, **query: int) -> tuple[list, int]:
    items, start, pages = [], 0, 0
    while True:
        page = client.get_evidence(from_height=start, **query)
        items += page.items
        pages += 1
        if page.next_height == 0:
            return items, pages
        start = page.next_height


def test_pages_hold_every_committed_piece_once_in_order(client):
    items, pages = all_pages(client, limit=2)
    assert [(i.height, i.index, i.validator) for i in items] == \
        [(1, 0, 2), (3, 0, 1), (3, 1, 2), (4, 0, 2)]
    assert pages == 3  # a page never splits block 3
    expected = [p for _, pieces in sorted(CHAIN_EVIDENCE.items()) for p in pieces]
    assert [canonical.decode(i.evidence) for i in items] == expected


def test_an_item_can_be_checked_by_anyone_with_the_validator_set(client):
    (item,) = client.get_evidence(from_height=4, to_height=4).items
    assert (item.validator, item.evidence_height, item.round) == (2, 3, 0)
    assert item.vote_type == 1  # TendermintVoteStep.PREVOTE
    assert item.block_a < item.block_b
    for block_id, signature in ((item.block_a, item.signature_a),
                                (item.block_b, item.signature_b)):
        vote = Vote(item.evidence_height, item.round, VoteStep.PREVOTE, block_id, 2)
        assert verifier().verify(2, vote, signature)


def test_validator_and_height_filters(client):
    against_2, _ = all_pages(client, validator=2, limit=1)
    assert [(i.height, i.round) for i in against_2] == [(1, 0), (3, 1), (4, 0)]
    assert [i.height for i in client.get_evidence(validator=1).items] == [3]
    assert client.get_evidence(validator=0).items == []
    assert [i.height for i in client.get_evidence(to_height=2).items] == [1]
    assert client.get_evidence(from_height=5).items == []


def test_bad_requests_are_invalid_argument(client):
    with pytest.raises(QenexError) as err:
        client.get_evidence(limit=1_001)
    assert (err.value.code, err.value.reason) == ("INVALID_ARGUMENT", "BAD_REQUEST")
    assert "maximum 1000" in err.value.detail
    with pytest.raises(QenexError) as err:
        client.get_evidence(from_height=4, to_height=3)
    assert (err.value.code, err.value.reason) == ("INVALID_ARGUMENT", "BAD_REQUEST")


def test_cli_table_json_and_refusal(node):
    table = run("query", "evidence", "--node", node.target, "--validator", "2", "--limit", "1")
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split()[:3] == ["height", "validator", "votes"]
    assert lines[1].split()[:4] == ["1", "2", "1/0", "precommit"]
    assert lines[-1] == "more: --from 3"
    data = json.loads(run("query", "evidence", "--node", node.target, "--from", "3",
                          "--json").output)
    assert [(e["height"], e["validator"], e["round"], e["vote_type"]) for e in data["items"]] \
        == [(3, 1, 0, "PRECOMMIT"), (3, 2, 1, "PRECOMMIT"), (4, 2, 0, "PREVOTE")]
    assert data["next_height"] == 0 and len(data["items"][0]["id"]) == 64
    refused = run("query", "evidence", "--node", node.target, "--limit", "5000")
    assert refused.exit_code == 1 and "BAD_REQUEST" in refused.output
    assert refused.output.strip().count("\n") == 0


def test_sdk_refuses_an_item_whose_fields_differ_from_its_bytes():
    """A node (or proxy) that reports other fields than the committed bytes say is caught:
    each item is rebuilt from its bytes and compared whole."""
    from qenex_node.api.codec import evidence_to_pb
    from qenex_node.api.evidence import evidence_view
    from qenex_node.sdk import verify_evidence

    data = canonical.encode(piece(2, 3, round_=1))
    honest = evidence_to_pb(evidence_view(5, 0, 2, data))
    verify_evidence(honest)
    tampered = [("round", 0), ("validator", 1), ("evidence_height", 4), ("block_a", b"")]
    for field, value in tampered:
        item = type(honest)()
        item.CopyFrom(honest)
        setattr(item, field, value)
        with pytest.raises(QenexError) as err:
            verify_evidence(item)
        assert err.value.reason == "BAD_PROOF", field
    garbage = type(honest)()
    garbage.CopyFrom(honest)
    garbage.evidence = b"\x00not canonical"
    with pytest.raises(QenexError) as err:
        verify_evidence(garbage)
    assert err.value.reason == "BAD_PROOF"
