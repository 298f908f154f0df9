"""Real software TPM (swtpm) and SoftHSM2 token for the crypto tests; no mocks.

Missing tools skip the tests on a developer machine but FAIL under CI (env CI set), so
CI cannot silently stop exercising the hardware paths.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN_PIN = "4321"


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI (install it in .ci/run)")
    pytest.skip(f"{what} is not installed")


def _free_port_pair() -> int:
    """A port P with P + 1 also free: the swtpm TCTI finds the control port at P + 1."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no two adjacent free loopback ports")


def _wait_listening(port: int, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@pytest.fixture(scope="module")
def swtpm(tmp_path_factory):
    """Start swtpm on free loopback ports; yields the TCTI string."""
    if shutil.which("swtpm") is None:
        _missing("swtpm (Debian package swtpm)")
    if importlib.util.find_spec("tpm2_pytss") is None:
        _missing("tpm2-pytss (pip install '.[tpm]')")
    state = tmp_path_factory.mktemp("swtpm")
    port = _free_port_pair()
    ctrl = port + 1
    pidfile = state / "pid"
    subprocess.run(["swtpm", "socket", "--tpmstate", f"dir={state}", "--tpm2",
                    "--server", f"type=tcp,port={port},bindaddr=127.0.0.1",
                    "--ctrl", f"type=tcp,port={ctrl},bindaddr=127.0.0.1",
                    "--flags", "not-need-init,startup-clear", "--daemon",
                    "--pid", f"file={pidfile}"], check=True, timeout=10)
    pid = int(pidfile.read_text())
    try:
        _wait_listening(port)
        yield f"swtpm:host=127.0.0.1,port={port}"
    finally:
        os.kill(pid, signal.SIGTERM)


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory):
    """A fresh SoftHSM2 token in a temp dir; yields (module path, token label)."""
    if shutil.which("softhsm2-util") is None or not Path(SOFTHSM_MODULE).exists():
        _missing("SoftHSM2 (Debian package softhsm2)")
    if importlib.util.find_spec("pkcs11") is None:
        _missing("python-pkcs11 (pip install '.[hsm]')")
    home = tmp_path_factory.mktemp("softhsm")
    (home / "tokens").mkdir()
    conf = home / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {home / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "qenex-test",
                    "--pin", TOKEN_PIN, "--so-pin", "87654321"], check=True,
                   capture_output=True, timeout=30)
    try:
        yield SOFTHSM_MODULE, "qenex-test"
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous
