"""Node config: the seed's block as written; every error names its key."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from qenex_node.config import ConfigError, load_config, parse_config, parse_duration_ms

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "node.example.yaml"


def _doc() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def test_example_config_with_the_seed_block_loads():
    config = load_config(EXAMPLE)
    c = config.consensus
    assert (c.algorithm, c.nodes, c.fault_tolerance, c.block_time_ms, c.finality) == \
        ("pbft", 7, 2, 500, "immediate")
    assert len(config.peers) == 6 and config.grpc_port == 26650


@pytest.mark.parametrize("text, ms", [("500ms", 500), ("2s", 2000), ("1m", 60_000), (250, 250)])
def test_durations(text, ms):
    assert parse_duration_ms(text, "k") == ms


@pytest.mark.parametrize("path, value, key", [
    (("consensus", "block_time"), "soon", "consensus.block_time"),
    (("consensus", "algorithm"), "paxos", "consensus.algorithm"),
    (("consensus", "fault_tolerance"), 3, "consensus.fault_tolerance"),
    (("consensus", "finality"), "probabilistic", "consensus.finality"),
    (("consensus", "nodes"), "seven", "consensus.nodes"),
    (("network", "listen"), "localhost", "network.listen"),
    (("network", "peers"), {1: "a:1"}, "network.peers"),
    (("api", "grpc"), "h:99999", "api.grpc"),
    (("node", "chain_id"), "", "node.chain_id"),
    (("node", "id"), 9, "node.id"),
    (("keystore", "type"), "usb-stick", "keystore.type"),
    (("consensus", "colour"), "blue", "consensus.colour"),
    (("api", "rest"), "nowhere", "api.rest"),
    (("api", "rest"), "0.0.0.0:26650", "api.rest"),  # the example's gRPC address
    (("api", "rest_body_bytes_max"), 1000, "api.rest_body_bytes_max"),
    (("api", "rest_ws_subscriptions_max"), 0, "api.rest_ws_subscriptions_max"),
])
def test_each_bad_value_names_its_key(path, value, key):
    doc = copy.deepcopy(_doc())
    doc[path[0]][path[1]] = value
    with pytest.raises(ConfigError) as info:
        parse_config(doc, EXAMPLE)
    assert info.value.key == key, str(info.value)


def test_rest_gateway_address_is_optional_and_read_from_api_rest():
    assert parse_config(_doc(), EXAMPLE).rest_host is None  # gRPC only, as before
    doc = _doc()
    doc["api"].update(rest="127.0.0.1:8080", rest_ws_subscriptions_max=8)
    config = parse_config(doc, EXAMPLE)
    assert (config.rest_host, config.rest_port, config.rest_ws_subscriptions_max) == \
        ("127.0.0.1", 8080, 8)


def test_garbage_files_are_refused_clearly(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("node: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- just a list")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_raft_allows_a_minority_of_crashes():
    doc = _doc()
    doc["consensus"] = {"algorithm": "RAFT", "nodes": 7, "fault_tolerance": 3}
    assert parse_config(doc, EXAMPLE).consensus.fault_tolerance == 3


@pytest.mark.parametrize("section, key, value, named", [
    # One full block and a certificate must fit a frame, or PRE-PREPAREs never travel.
    ("network", "frame_bytes_max", 4 * 1024 * 1024, "network.frame_bytes_max"),
    ("mempool", "bytes_max", 1024 * 1024, "mempool.bytes_max"),
    ("mempool", "txs_max", 10, "mempool.txs_max"),
    ("api", "grpc_message_bytes_max", 4096, "api.grpc_message_bytes_max"),
])
def test_limits_that_do_not_fit_each_other_are_refused_at_start(section, key, value, named):
    doc = _doc()
    doc.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError) as info:
        parse_config(doc, EXAMPLE)
    assert named in str(info.value)


def test_sync_answers_are_split_to_fit_the_frame():
    from consensus import canonical
    from qenex_node.config import sync_response_bytes_max
    from qenex_node.core.sync import SyncRequest, sync_response
    from tests.unit.test_replica import committed_chain

    chain = committed_chain()
    one = len(canonical.encode(chain[0]))
    answer = sync_response(SyncRequest(1, 64, 0), chain, 5, 1, bytes_max=2 * one + one // 2)
    assert 1 <= len(answer.blocks) <= 2 and answer.blocks == tuple(chain[:len(answer.blocks)])
    assert sync_response_bytes_max(load_config(EXAMPLE)) < load_config(EXAMPLE).frame_bytes_max


def test_tendermint_round_timeouts_come_from_the_yaml_as_ticks():
    from qenex_node.runtime.node import engine_config

    doc = _doc()
    doc["consensus"].update(algorithm="tendermint", timeout_propose="3s",
                            timeout_propose_delta="500ms", timeout_commit="1s")
    config = parse_config(doc, EXAMPLE)
    assert config.consensus.round_timeouts_ms == {"timeout_propose": 3000,
                                                  "timeout_propose_delta": 500,
                                                  "timeout_commit": 1000}
    from consensus.types import Validator, ValidatorSet
    from crypto.simulated import SimulatedVerifier

    validators = ValidatorSet(tuple(Validator(i, b"k%d" % i) for i in range(7)))
    engine = engine_config(config, validators, SimulatedVerifier(0, 7, "c"))
    tick = config.consensus.tick_ms
    assert (engine.timeout_propose_ticks, engine.timeout_propose_delta_ticks,
            engine.timeout_commit_ticks) == (3000 // tick, 500 // tick, 1000 // tick)
    doc["consensus"]["timeout_prevote"] = "soon"
    with pytest.raises(ConfigError) as info:
        parse_config(doc, EXAMPLE)
    assert info.value.key == "consensus.timeout_prevote"
