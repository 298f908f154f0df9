"""Operator commands: `qenex testnet`, `qenex node start`, `qenex cluster up|down|status`."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

READY_TIMEOUT_S_DEFAULT = 60.0
STOP_TIMEOUT_S = 15.0


@click.command("testnet")
@click.option("--nodes", "-n", default=7, show_default=True, type=click.IntRange(1, 64))
@click.option("--algorithm", "-a", default="pbft", show_default=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--clients", default=4, show_default=True, type=click.IntRange(0, 10_000),
              help="Funded client accounts (key files in OUT/clients).")
@click.option("--chain-id", default="qenex-local", show_default=True)
@click.option("--block-time", "block_time_ms", default=200, show_default=True,
              type=click.IntRange(1), help="Longest wait before a batch is cut, in ms.")
@click.option("--json", "as_json", is_flag=True)
def testnet_command(nodes: int, algorithm: str, out_dir: str, clients: int, chain_id: str,
                    block_time_ms: int, as_json: bool) -> None:
    """Generate an N-node local cluster: keys, genesis, one config per node."""
    from consensus.api import engine_names
    from qenex_node.testnet import generate_testnet

    if algorithm.lower() not in engine_names():
        raise click.BadParameter(f"registered: {', '.join(engine_names())}",
                                 param_hint="--algorithm")
    try:
        summary = generate_testnet(Path(out_dir), nodes, algorithm.lower(), clients, chain_id,
                                   block_time_ms)
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{nodes}-node {algorithm} testnet in {summary['dir']}")
    for node in summary["nodes"]:
        click.echo(f"  node{node['id']}: grpc {node['grpc']}  peer {node['peer']}  "
                   f"metrics {node['metrics']}")
    for client in summary["clients"]:
        click.echo(f"  client {client['address']}  {client['key_file']}")


@click.group("node")
def node_group() -> None:
    """Run a validator node."""


@node_group.command("start")
@click.option("--home", required=True, type=click.Path(exists=True, file_okay=False),
              help="Node folder holding config.yaml.")
@click.option("--config", "config_name", default="config.yaml", show_default=True)
def node_start(home: str, config_name: str) -> None:
    """Start the node daemon in the foreground (SIGTERM/SIGINT stop it cleanly)."""
    from crypto.errors import KeyStoreError
    from qenex_node.config import ConfigError, load_config
    from qenex_node.runtime.node import StartupError, run_node

    try:
        config = load_config(Path(home) / config_name)
        run_node(config)
    except (ConfigError, StartupError, KeyStoreError) as exc:
        click.echo(f"qenex: cannot start: {exc}", err=True)
        sys.exit(2)


# ------------------------------------------------------------ local clusters
def _homes(cluster_dir: Path) -> list[Path]:
    homes = sorted((p for p in cluster_dir.glob("node*") if (p / "config.yaml").exists()),
                   key=lambda p: int(p.name[4:]) if p.name[4:].isdigit() else 0)
    if not homes:
        raise click.ClickException(f"no node*/config.yaml under {cluster_dir}; run "
                                   "`qenex testnet --out DIR` first")
    return homes


def _summary(cluster_dir: Path) -> dict[str, Any]:
    return json.loads((cluster_dir / "cluster.json").read_text())


def _pid(home: Path) -> int | None:
    try:
        pid = int((home / "node.pid").read_text())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None


def _http_get(address: str, path: str, timeout_s: float = 1.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=timeout_s) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (urllib.error.URLError, OSError):
        return 0, ""


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def start_node_process(home: Path) -> int:
    with open(home / "node.log", "ab") as log:  # the child keeps its own copy of the fd
        process = subprocess.Popen([sys.executable, "-m", "qenex_node.cli", "node", "start",
                                    "--home", str(home)], stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    (home / "node.pid").write_text(str(process.pid))
    return process.pid


def node_status(cluster_dir: Path) -> list[dict[str, Any]]:
    out = []
    for node in _summary(cluster_dir)["nodes"]:
        home = Path(node["home"])
        code, _ = _http_get(node["metrics"], "/ready")
        _, metrics = _http_get(node["metrics"], "/metrics")
        height = _metric(metrics, "qenex_height")
        leader = _metric(metrics, "qenex_leader")
        out.append({"id": node["id"], "pid": _pid(home), "ready": code == 200,
                    "height": int(height) if height is not None else None,
                    "view": _metric(metrics, "qenex_view"),
                    "leader": int(leader) if leader is not None else None,
                    "peers": _metric(metrics, "qenex_peers_connected"),
                    "grpc": node["grpc"], "metrics": node["metrics"],
                    # clusters made before the REST gateway have no "rest" address
                    **({"rest": node["rest"]} if "rest" in node else {})})
    return out


def wait_ready(cluster_dir: Path, timeout_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        status = node_status(cluster_dir)
        if all(s["ready"] for s in status) or time.monotonic() > deadline:
            return status
        time.sleep(0.25)


@click.group("cluster")
def cluster_group() -> None:
    """Run a local cluster made by `qenex testnet` as background processes."""


@cluster_group.command("up")
@click.argument("cluster_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--timeout", "timeout_s", default=READY_TIMEOUT_S_DEFAULT, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def cluster_up(cluster_dir: str, timeout_s: float, as_json: bool) -> None:
    """Start every node not already running and wait until all are ready."""
    root = Path(cluster_dir)
    for home in _homes(root):
        if _pid(home) is None:
            start_node_process(home)
    status = wait_ready(root, timeout_s)
    _print_status(status, as_json)
    if not all(s["ready"] for s in status):
        raise click.ClickException(f"not all nodes ready after {timeout_s} s; see "
                                   f"{root}/node*/node.log")


@cluster_group.command("down")
@click.argument("cluster_dir", type=click.Path(exists=True, file_okay=False))
def cluster_down(cluster_dir: str) -> None:
    """Stop every node (SIGTERM, then SIGKILL after a grace period)."""
    homes = _homes(Path(cluster_dir))
    pids = [p for p in (_pid(h) for h in homes) if p is not None]
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    for home in homes:
        (home / "node.pid").unlink(missing_ok=True)
    click.echo(f"stopped {len(pids)} node(s)")


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


@cluster_group.command("status")
@click.argument("cluster_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True)
def cluster_status(cluster_dir: str, as_json: bool) -> None:
    """Process, readiness, height, view and leader of every node."""
    _print_status(node_status(Path(cluster_dir)), as_json)


def _print_status(status: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return
    for s in status:
        click.echo(f"node{s['id']}: pid={s['pid']} ready={s['ready']} height={s['height']} "
                   f"view={s['view']} leader={s['leader']} peers={s['peers']} grpc={s['grpc']}")
