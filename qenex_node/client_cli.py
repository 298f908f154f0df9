"""Client commands of `qenex`: `status`, `tx ...`, `query ...` (all through the SDK).

Amounts are integers in minor units (cents for USD): money is never a float. Every
failure prints one line `error: CODE REASON: detail` on stderr and exits 1; `--json`
prints one JSON object on stdout (bytes as hex).
"""
from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click
from google.protobuf.json_format import MessageToDict

from consensus import canonical
from consensus.tendermint.evidence import evidence_id
from proto.qenex.v1 import consensus_pb2
from qenex_node.sdk import QenexClient, QenexError, SubmitOutcome, load_account_key

NODE_DEFAULT = "127.0.0.1:7050"
NODE_ENV = "QENEX_NODE"
TIMEOUT_S_DEFAULT = 10.0

node_option = click.option("--node", "node", envvar=NODE_ENV, default=NODE_DEFAULT,
                           show_default=True, help=f"gRPC address HOST:PORT (env {NODE_ENV})")
json_option = click.option("--json", "as_json", is_flag=True, help="print JSON")


def read_options(fn: Any) -> Any:
    """--consistency, --min-height and --timeout, for every query that reads node state."""
    fn = click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.5),
                      default=TIMEOUT_S_DEFAULT, show_default=True,
                      help="seconds to wait; a node that has not reached the height by "
                           "then answers BEHIND")(fn)
    fn = click.option("--min-height", "min_height", type=click.IntRange(min=0), default=0,
                      help="serve only from state at or after this height (read-your-"
                           "writes); a node behind it answers BEHIND")(fn)
    return click.option("--consistency", type=click.Choice(["linearizable", "local"]),
                        default="linearizable", show_default=True,
                        help="linearizable: reflects every commit before the read began, "
                             "on any node; local: this node's latest state, maybe behind")(fn)


def _fail(exc: QenexError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


def _hexify(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _hexify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hexify(v) for v in value]
    return value


def _message_dict(msg: Any) -> dict[str, Any]:
    """Protobuf -> dict with bytes as hex (MessageToDict would give base64)."""
    out: dict[str, Any] = {}
    for field, value in msg.ListFields():
        if field.message_type is not None:
            if field.is_repeated:
                out[field.name] = [_message_dict(v) for v in value]
            else:
                out[field.name] = _message_dict(value)
        elif field.enum_type is not None:
            out[field.name] = MessageToDict(msg, preserving_proto_field_name=True)[field.name]
        else:
            out[field.name] = _hexify(list(value) if field.is_repeated
                                      else value)
    return out


def _emit(as_json: bool, data: dict[str, Any], lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(_hexify(data), sort_keys=True))
    else:
        click.echo("\n".join(lines))


def _client(node: str, timeout_s: float = TIMEOUT_S_DEFAULT) -> QenexClient:
    return QenexClient(node, timeout_s=timeout_s)


# ------------------------------------------------------------ status
@click.command(name="status")
@node_option
@json_option
def status_command(node: str, as_json: bool) -> None:
    """Height, state root, algorithm, view, leader and peers of one node."""
    try:
        with _client(node) as client:
            s = client.status()
    except QenexError as exc:
        _fail(exc)
    leader = "unknown" if s.leader < 0 else str(s.leader)
    data = {"node_id": s.node_id, "chain_id": s.chain_id, "algorithm": s.algorithm,
            "height": s.height, "state_root": s.state_root, "block_hash": s.block_hash,
            "view": s.view, "leader": s.leader, "role": s.role,
            "peers_connected": s.peers_connected, "mempool_txs": s.mempool_txs,
            "version": s.version}
    _emit(as_json, data, [
        f"node      {s.node_id} ({s.role}) on {s.chain_id}, {s.version}",
        f"height    {s.height}",
        f"state     {s.state_root.hex()}",
        f"block     {s.block_hash.hex()}",
        f"algorithm {s.algorithm}  view {s.view}  leader {leader}",
        f"peers     {s.peers_connected}  mempool {s.mempool_txs}",
    ])


# ------------------------------------------------------------ tx
@click.group(name="tx")
def tx_group() -> None:
    """Sign and submit transactions."""


def _outcome_lines(outcome: SubmitOutcome) -> list[str]:
    lines = [f"tx {outcome.tx_id.hex()} {outcome.status}"]
    if outcome.receipt is not None:
        verdict = "success" if outcome.receipt.success else f"failed {outcome.receipt.reason_text}"
        lines.append(f"height {outcome.height} index {outcome.receipt.index}: {verdict}")
    return lines


def _outcome_dict(outcome: SubmitOutcome) -> dict[str, Any]:
    data: dict[str, Any] = {"tx_id": outcome.tx_id, "status": outcome.status}
    if outcome.receipt is not None:
        data |= {"height": outcome.height, "receipt": _message_dict(outcome.receipt)}
    return data


@tx_group.command(name="transfer")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False),
              help="client key file (as written by `qenex testnet`)")
@click.option("--to", "to", required=True, help="recipient address, 40 hex digits")
@click.option("--amount", type=click.IntRange(min=1), required=True,
              help="minor units (cents for USD)")
@click.option("--currency", default="USD", show_default=True)
@click.option("--memo", default="", help="at most 256 bytes")
@click.option("--wait/--no-wait", default=False, help="answer once committed")
@click.option("--timeout-ms", type=click.IntRange(1, 600_000), default=10_000,
              show_default=True, help="how long --wait waits")
@node_option
@json_option
def transfer_command(key_file: str, to: str, amount: int, currency: str, memo: str, wait: bool,
                     timeout_ms: int, node: str, as_json: bool) -> None:
    """Move AMOUNT minor units of CURRENCY from the key's account to --to."""
    try:
        key = load_account_key(key_file)
        with _client(node) as client:
            outcome = client.transfer(key, to, amount, currency, wait=wait, memo=memo,
                                      timeout_ms=timeout_ms)
    except QenexError as exc:
        _fail(exc)
    _emit(as_json, _outcome_dict(outcome), _outcome_lines(outcome))
    if outcome.receipt is not None and not outcome.receipt.success:
        sys.exit(1)  # committed, but the ledger refused it: a script must notice


@tx_group.command(name="create-account")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False))
@click.option("--wait/--no-wait", default=True)
@node_option
@json_option
def create_account_command(key_file: str, wait: bool, node: str, as_json: bool) -> None:
    """Register the key's account on the chain (self-signed, nonce 1)."""
    try:
        key = load_account_key(key_file)
        with _client(node) as client:
            outcome = client.create_account(key, wait=wait)
    except QenexError as exc:
        _fail(exc)
    _emit(as_json, _outcome_dict(outcome), _outcome_lines(outcome))


# ------------------------------------------------------------ query
@click.group(name="query")
def query_group() -> None:
    """Read accounts, transactions and blocks (with client-side proof checks)."""


@query_group.command(name="account")
@click.argument("address")
@click.option("--prove", is_flag=True, help="fetch and verify a state proof")
@read_options
@node_option
@json_option
def query_account(address: str, prove: bool, consistency: str, min_height: int,
                  timeout_s: float, node: str, as_json: bool) -> None:
    try:
        with _client(node, timeout_s) as client:
            response = client.account(address, prove=prove, consistency=consistency,
                                      min_height=min_height)
    except QenexError as exc:
        _fail(exc)
    if not response.found:
        lines = [f"account {address} not found at height {response.height}"
                 + (" (absence proven)" if prove else "")]
    else:
        a = response.account
        lines = [(f"account {a.address.hex()} nonce {a.nonce} (state at height "
                  f"{response.height}, {consistency})")]
        lines += [f"  {b.currency} {b.amount}" for b in a.balances]
        if prove:
            lines.append(f"proof verified against state root {response.proof.state_root.hex()}"
                         f" at height {response.proof.height}")
    _emit(as_json, _message_dict(response) | {"found": response.found,
                                              "height": response.height}, lines)


@query_group.command(name="tx")
@click.argument("tx_id")
@click.option("--prove", is_flag=True, help="fetch and verify the Merkle inclusion proof")
@read_options
@node_option
@json_option
def query_tx(tx_id: str, prove: bool, consistency: str, min_height: int, timeout_s: float,
             node: str, as_json: bool) -> None:
    try:
        with _client(node, timeout_s) as client:
            response = client.transaction(_hex_arg(tx_id, "TXID"), prove=prove,
                                          consistency=consistency, min_height=min_height)
    except QenexError as exc:
        _fail(exc)
    r = response.receipt
    verdict = "success" if r.success else f"failed {r.reason_text}"
    _emit(as_json, _message_dict(response), [
        f"tx {r.tx_id.hex()} in block {r.height} index {r.index}: {verdict}"]
        + (["inclusion proof verified"] if prove else []))


@query_group.command(name="block")
@click.argument("selector")
@read_options
@node_option
@json_option
def query_block(selector: str, consistency: str, min_height: int, timeout_s: float,
                node: str, as_json: bool) -> None:
    """A block by HEIGHT or by 64-hex-digit hash (hash and tx root are rechecked)."""
    target: int | bytes = int(selector) if selector.isdigit() else _hex_arg(selector, "HASH")
    try:
        with _client(node, timeout_s) as client:
            block = client.block(target, consistency=consistency, min_height=min_height)
    except QenexError as exc:
        _fail(exc)
    h = block.block.header
    _emit(as_json, _message_dict(block), [
        f"block {h.height} {block.block_hash.hex()}",
        f"parent {h.parent_hash.hex()}  proposer {h.proposer}  time_ms {h.timestamp_ms}",
        f"txs {len(block.block.txs)}  state_root {block.state_root.hex()}",
        f"certificate {block.certificate.kind} with {len(block.certificate.votes)} votes"])


EVIDENCE_ID_HEX_SHOWN = 16  # table columns show id prefixes; --json gives them whole


def _evidence_dict(item: Any) -> dict[str, Any]:
    """Every field, zeros included (validator 0 and round 0 are answers, not absences)."""
    return {"height": item.height, "index": item.index, "validator": item.validator,
            "evidence_height": item.evidence_height, "round": item.round,
            "vote_type": consensus_pb2.TendermintVoteStep.Name(item.vote_type),
            "block_a": item.block_a, "block_b": item.block_b,
            "signature_a": item.signature_a, "signature_b": item.signature_b,
            "evidence": item.evidence, "id": evidence_id(canonical.decode(item.evidence))}


def _evidence_lines(items: list[dict[str, Any]], next_height: int) -> list[str]:
    if not items:
        return ["no committed evidence in that range"]
    n = EVIDENCE_ID_HEX_SHOWN
    header = (f"{'height':>8} {'validator':>9}  {'votes at':<22} {'block_a':<{n}} "
              f"{'block_b':<{n}} id")
    lines = [header]
    for e in items:
        at = f"{e['evidence_height']}/{e['round']} {e['vote_type'].lower()}"
        lines.append(f"{e['height']:>8} {e['validator']:>9}  {at:<22} "
                     f"{e['block_a'].hex()[:n] or 'nil':<{n}} "
                     f"{e['block_b'].hex()[:n] or 'nil':<{n}} {e['id'].hex()[:n]}")
    if next_height:
        lines.append(f"more: --from {next_height}")
    return lines


@query_group.command(name="evidence")
@click.option("--from", "from_height", type=click.IntRange(min=0), default=0,
              help="first committed height")
@click.option("--to", "to_height", type=click.IntRange(min=0), default=0,
              help="last committed height (0 = the tip)")
@click.option("--validator", type=click.IntRange(min=0), default=None,
              help="only evidence against this validator index")
@click.option("--limit", type=click.IntRange(min=0), default=0,
              help="items per page (0 = the node's default, 100; at most 1000)")
@node_option
@json_option
def query_evidence(from_height: int, to_height: int, validator: int | None, limit: int,
                   node: str, as_json: bool) -> None:
    """Committed evidence of equivocation (Tendermint), oldest first, one page."""
    try:
        with _client(node) as client:
            response = client.get_evidence(from_height, to_height, validator, limit)
    except QenexError as exc:
        _fail(exc)
    items = [_evidence_dict(i) for i in response.items]
    _emit(as_json, {"items": items, "next_height": response.next_height},
          _evidence_lines(items, response.next_height))


def _hex_arg(text: str, name: str) -> bytes:
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        _fail(QenexError("CLIENT", "BAD_ARGUMENT", f"{name} must be hex"))


@click.group(name="admin")
def admin_group() -> None:
    """Operator commands for a running node."""


@admin_group.command(name="transfer-leadership")
@click.option("--to", "to", required=True, type=click.IntRange(min=0),
              help="validator index of the new leader")
@node_option
@json_option
def transfer_leadership_command(to: int, node: str, as_json: bool) -> None:
    """Ask the leader at --node to hand leadership to validator --to (Raft; engines that
    change leaders only by view change refuse with NOT_SUPPORTED)."""
    try:
        with _client(node) as client:
            leader = client.transfer_leadership(to)
    except QenexError as exc:
        _fail(exc)
    _emit(as_json, {"started": True, "to": to, "leader": leader},
          [f"hand-over to validator {to} started; leader now {leader}"])
