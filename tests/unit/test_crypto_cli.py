"""`qenex keys` and `qenex bench crypto` through click."""
from __future__ import annotations

import json

from click.testing import CliRunner

from qenex_node.cli import main

try:
    from crypto_fixtures import swtpm
except ImportError:
    from tests.unit.crypto_fixtures import swtpm  # noqa: F401


def test_generate_show_and_refusals(tmp_path):
    runner = CliRunner()
    env = {"QENEX_KEY_PASSPHRASE": "a long passphrase"}
    key = tmp_path / "node.key"
    made = runner.invoke(main, ["keys", "generate", "--keystore", "file", "--path", str(key)],
                         env=env)
    assert made.exit_code == 0, made.output
    shown = runner.invoke(main, ["keys", "show", "--path", str(key)])
    info = json.loads(shown.output)
    assert info["scheme"] == "ML_DSA_87" and info["store"] == "file"
    assert info["public_key"] == json.loads(made.output)["public_key"]
    again = runner.invoke(main, ["keys", "generate", "--path", str(key)], env=env)
    assert again.exit_code == 1 and "already exists" in again.output
    assert len(again.output.strip().splitlines()) == 1
    missing = runner.invoke(main, ["keys", "show", "--path", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "not found" in missing.output


def test_attest_and_verify_cli(tmp_path, swtpm):
    runner = CliRunner()
    key = tmp_path / "node.key"
    assert runner.invoke(main, ["keys", "generate", "--keystore", "tpm", "--tcti", swtpm,
                                "--path", str(key)]).exit_code == 0
    nonce = "ab" * 16
    out = runner.invoke(main, ["keys", "attest", "--path", str(key), "--nonce", nonce,
                               "--tcti", swtpm])
    assert out.exit_code == 0, out.output
    (tmp_path / "att.json").write_text(out.output)
    doc = json.loads(out.output)
    (tmp_path / "ak.pem").write_text(doc["ak_public_pem"])
    ok = runner.invoke(main, ["keys", "verify-attestation", "--attestation",
                              str(tmp_path / "att.json"), "--nonce", nonce, "--path", str(key),
                              "--trusted-ak", str(tmp_path / "ak.pem")])
    assert ok.exit_code == 0 and "pinned" in ok.output
    bad = runner.invoke(main, ["keys", "verify-attestation", "--attestation",
                               str(tmp_path / "att.json"), "--nonce", "cd" * 16,
                               "--path", str(key)])
    assert bad.exit_code == 1 and "rejected" in bad.output


def test_bench_crypto_json():
    out = CliRunner().invoke(main, ["bench", "crypto", "--json", "--seconds", "0.005",
                                    "--pool-items", "8"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["schemes"]["ML_DSA_87"]["verify_per_s"] > 0
    assert set(report["pool"]["ML_DSA_87_thread"]) == {"verify_per_s_1_workers",
                                                       "verify_per_s_2_workers"}
