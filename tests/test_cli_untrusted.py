"""The command line with hostile paths, bundles and tracking stores: exit 2 with a message before
any work, or the work done with a warning when only tracking fails."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vipml.cli import main
from vipml.integrity import seal

ROOT = Path(__file__).resolve().parents[1]


def _score(bundle, data, out, *extra):
    return ["score", "--bundle", str(bundle), "--data", str(data), "--as-of", "2024-12-01",
            "--out", str(out), "--quiet", *extra]  # fmt: skip


@pytest.mark.parametrize("kind", ["under_file", "folder", "suffix"])
def test_bad_out_paths_exit_2_before_any_work(kind, tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    out = {
        "under_file": tmp_path / "plain" / "t.csv",
        "folder": tmp_path,
        "suffix": tmp_path / "t.json",
    }[kind]
    # the bundle does not exist: the output path is refused first, so nothing is loaded
    assert main(_score(tmp_path / "no-bundle", tmp_path, out)) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "Fix:" in err and "Traceback" not in err
    for command in (
        ["features", "--as-of", "2024-01-01", "--out", str(out), "--data", str(tmp_path)],
        ["report", "--bundle", str(tmp_path), "--as-of", "2024-01-01", "--out", str(out)],
    ):
        if kind == "suffix" and command[0] == "report":
            command[-1] = str(tmp_path / "r.pdf")
        assert main(command) == 2
        assert "--out" in capsys.readouterr().err


def test_folder_outputs_under_a_file_exit_2(tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    assert main(["validate", "--data", str(tmp_path), "--out", str(tmp_path / "plain")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["train", "--config", "none.yaml", "--out", str(tmp_path / "plain" / "m")]) == 2
    assert "nothing can be written under it" in capsys.readouterr().err


def test_a_config_that_is_not_utf8_exits_2_naming_it(tmp_path, capsys):
    config = tmp_path / "shop.yaml"
    config.write_bytes("name: caf\xe9\n".encode("latin-1"))
    assert main(["validate", "--data", str(tmp_path), "--config", str(config)]) == 2
    assert f"{config}: the config file is not UTF-8" in capsys.readouterr().err


def test_a_tracking_server_that_is_down_is_a_warning(small_bundle, tmp_path, capsys):
    bundle, data = small_bundle
    config = tmp_path / "c.yaml"
    config.write_text("tracking:\n  uri: http://127.0.0.1:9\n", encoding="utf-8")
    out = tmp_path / "t.csv"
    with pytest.warns(UserWarning, match="MLflow tracking failed, the results are written"):
        assert main(_score(bundle, data, out, "--config", str(config))) == 0
    assert out.is_file()
    assert "targets:" in capsys.readouterr().out


def test_the_bundle_never_chooses_the_tracking_store(small_bundle, tmp_path, monkeypatch):
    bundle, data = small_bundle
    copy = tmp_path / bundle.name
    shutil.copytree(bundle, copy)
    cfg = json.loads((copy / "config.json").read_text(encoding="utf-8"))
    evil = tmp_path / "evil" / "bundle-chose.db"
    cfg["tracking"] = {**cfg["tracking"], "enabled": True, "uri": f"sqlite:///{evil}"}
    (copy / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    seal(copy)
    work = tmp_path / "work"
    work.mkdir()
    mine = work / "mine.db"
    monkeypatch.chdir(work)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{mine}")
    assert main(_score(copy, data, work / "t.csv")) == 0
    assert not evil.parent.exists()
    assert mine.is_file()  # the caller's environment chose the store


def test_two_runs_creating_one_store_at_once_both_succeed(tmp_path):
    code = (
        "from vipml.config import load_config\n"
        "from vipml.tracking import _run\n"
        "with _run(load_config(None), 'vipml-race', 'r') as active:\n"
        "    active[0].log_metric('m', 1.0)\n"
        "print('logged')\n"
    )
    env = {"PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true", "PATH": "/usr/bin:/bin"}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0 and "logged" in out, err[-2000:]
    assert (tmp_path / "mlflow.db").is_file()
