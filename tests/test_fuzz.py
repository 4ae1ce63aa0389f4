"""The standing fuzz test: damaged bundles, damaged configs and odd arguments given to the
command line exit 0 or 2 with a message: never a traceback, never a signal, within a time limit.

The commands run in a subprocess (``tests/cli_worker.py``) that serves every case, so a native
crash (abort, segfault) shows as a signal and imports are paid once. Cases are drawn by
hypothesis with a fixed seed (the same cases in every CI run); ``VIPML_FUZZ_EXAMPLES`` scales
the number of cases for a longer local run, e.g. ``VIPML_FUZZ_EXAMPLES=500``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import select
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vipml.integrity import seal

ROOT = Path(__file__).resolve().parents[1]
SCALE = int(os.environ.get("VIPML_FUZZ_EXAMPLES", "0") or 0)
CASE_SECONDS = 60  # one command on 800 customers takes about a second
NO_TRACKING = "tracking:\n  enabled: false\n"
CONFIG = (
    "tracking:\n  enabled: false\n"
    "timezone: Asia/Seoul\n"
    "labels:\n  horizon_days: 90\n"
    "vip:\n  rule: top_share\n  share: 0.1\n"
    "score:\n  control_share: 0.1\n"
)
SEEN: dict[str, dict[int, int]] = {}  # kind -> exit code -> count, printed at the end


def _settings(n: int):
    return settings(
        max_examples=max(n, SCALE),
        deadline=None,
        derandomize=not SCALE,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


class Worker:
    """The subprocess running vipml commands."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true"}
        env.pop("MLFLOW_TRACKING_URI", None)
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "cli_worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def run(self, argv: list[str], cwd: Path, kind: str) -> tuple[int, str]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"argv": argv, "cwd": str(cwd)}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], CASE_SECONDS)
        if not ready:
            self.proc.kill()
            pytest.fail(f"vipml {' '.join(argv)} took more than {CASE_SECONDS} s")
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait(timeout=10)
            pytest.fail(f"vipml {' '.join(argv)} killed the process (exit {code}; signal if < 0)")
        answer = json.loads(line)
        assert answer["crash"] is None, f"vipml {' '.join(argv)} raised:\n{answer['crash']}"
        rc, err = answer["rc"], answer["err"]
        assert rc in (0, 2), f"vipml {' '.join(argv)} exited {rc}:\n{err}"
        assert "Traceback" not in err, err
        if rc == 2:
            assert err.strip(), "exit 2 without a message"
        SEEN.setdefault(kind, {}).setdefault(rc, 0)
        SEEN[kind][rc] += 1
        return rc, err

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.close()
    print("\nfuzz exit codes:", json.dumps(SEEN, sort_keys=True))


@pytest.fixture(scope="module")
def place(small_bundle, tmp_path_factory):
    """The bundle, its data, a config without tracking, and a scratch folder."""
    bundle, data = small_bundle
    root = tmp_path_factory.mktemp("fuzz")
    (root / "notrack.yaml").write_text(NO_TRACKING, encoding="utf-8")
    return {"bundle": bundle, "data": data, "root": root}


def _fresh(place) -> Path:
    folder = place["root"] / uuid.uuid4().hex[:10]
    folder.mkdir()
    return folder


# ---------------------------------------------------------------------------------------------
# damaged bundles

ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.just([]),
    st.just({}),
    st.lists(st.floats(allow_nan=True), max_size=3),
    st.just({"method": "platt"}),
    st.just("2300-01-01T00:00:00+00:00"),
)


def _paths(data, prefix=()):
    """Every JSON path (to a container or a leaf), at most 2,000."""
    out = [prefix]
    stack = [(data, prefix)]
    while stack and len(out) < 2000:
        value, path = stack.pop()
        items = (
            value.items()
            if isinstance(value, dict)
            else enumerate(value)
            if isinstance(value, list)
            else ()
        )
        for k, v in items:
            out.append((*path, k))
            stack.append((v, (*path, k)))
    return out


def _set(data, path, value):
    if not path:
        return value
    target = data
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value
    return data


_NUMBER = re.compile(rb"-?\d+(\.\d+)?(e[-+]?\d+)?")


def _resize(text: bytes) -> bytes:
    """Make ``tree_sizes`` match the trees again, so that a crafted tree reaches the deeper checks."""
    start, end = text.find(b"\nTree="), text.find(b"end of trees")
    if start < 0 or end < 0:
        return text
    body = text[start + 1 : end]
    cuts = [m.start() for m in re.finditer(rb"(?m)^Tree=", body)] + [len(body)]
    sizes = b" ".join(str(b - a).encode() for a, b in zip(cuts, cuts[1:], strict=False))
    return re.sub(rb"(?m)^tree_sizes=.*$", lambda _: b"tree_sizes=" + sizes, text, count=1)


def mutate(folder: Path, name: str, how: str, at: int, value, resize: bool) -> None:
    path = folder / name
    raw = path.read_bytes()
    if how == "cut":
        raw = raw[: at % (len(raw) + 1)]
    elif how == "flip":
        i = at % max(len(raw), 1)
        raw = raw[:i] + bytes([raw[i] ^ (1 << (at % 8))]) + raw[i + 1 :] if raw else raw
    elif name.endswith(".json"):  # replace one JSON value
        data = json.loads(raw)
        paths = _paths(data)
        data = _set(data, paths[at % len(paths)], value)
        raw = json.dumps(data, allow_nan=True).encode()
    else:  # replace one number of a text file
        found = list(_NUMBER.finditer(raw))
        if found:
            m = found[at % len(found)]
            raw = raw[: m.start()] + repr(value).encode() + raw[m.end() :]
    if name.endswith(".txt") and resize:
        raw = _resize(raw)
    path.write_bytes(raw)


BUNDLE_FILES = [
    "model.txt",
    "calibrator.json",
    "feature_spec.json",
    "config.json",
    "metrics.json",
    "backtest.csv",
    "reference.json",
    "curves.json",
    "bundle.json",
]


@st.composite
def bundle_damage(draw):
    name = draw(st.sampled_from(BUNDLE_FILES))
    weights = ["value", "value", "flip", "cut"] if name != "model.txt" else ["value", "flip", "cut"]
    return (
        name,
        draw(st.sampled_from(weights)),
        draw(st.integers(0, 2**31)),
        draw(ODD_VALUES),
        draw(st.booleans()),  # rewrite the checksums to match (a deliberate edit)
        draw(st.booleans()),  # rewrite tree_sizes to match
        draw(st.sampled_from(["score", "score", "report"])),
    )


def test_damaged_bundles_exit_0_or_2(worker, place):
    @_settings(40)
    @given(damage=bundle_damage())
    def case(damage):
        name, how, at, value, reseal, resize, command = damage
        folder = _fresh(place)
        bundle = folder / "bundle"
        shutil.copytree(place["bundle"], bundle)
        mutate(bundle, name, how, at, value, resize)
        if reseal:  # when bundle.json itself no longer parses, its checksums stay as they are
            with contextlib.suppress(ValueError, OSError):
                seal(bundle)
        out = folder / ("targets.csv" if command == "score" else "report.html")
        rc, err = worker.run(
            [
                command,
                "--bundle",
                str(bundle),
                "--data",
                str(place["data"]),
                "--as-of",
                "2024-12-01",
                "--out",
                str(out),
                "--config",
                str(place["root"] / "notrack.yaml"),
                "--quiet",
            ],
            folder,
            "bundle",
        )
        if not reseal and how in ("cut", "flip") and name != "bundle.json":
            changed = (place["bundle"] / name).read_bytes() != (bundle / name).read_bytes()
            if changed:
                assert rc == 2 and "changed since it was written" in err, err
        if rc == 0 and command == "score":
            import pandas as pd

            targets = pd.read_csv(folder / "targets.csv")
            scores = targets["score"]
            if "in_population" in targets:  # customers outside the trained population: no score
                scores = scores[targets["in_population"].astype(bool)]
            assert scores.map(math.isfinite).all(), "a damaged bundle gave non-finite scores"
        shutil.rmtree(folder, ignore_errors=True)

    case()


# ---------------------------------------------------------------------------------------------
# damaged configs

SNIPPETS = st.sampled_from(
    [
        "&a [1, 2]",
        "*a",
        "!!python/object/apply:os.system ['true']",
        "{",
        "]]",
        "\t",
        "? ",
        "- - -",
        "a: &x [*x]",
        "timezone: Mars/Olympus",
        "seed: 1e999",
        "labels:\n  horizon_days: -5",
        "\x00",
        "\ufeff",
    ]
)


@st.composite
def config_damage(draw):
    how = draw(st.sampled_from(["flip", "cut", "insert", "latin1", "bomb"]))
    return how, draw(st.integers(0, 2**31)), draw(st.one_of(SNIPPETS, st.text(max_size=20)))


def _damaged_config(how: str, at: int, snippet: str) -> bytes:
    raw = CONFIG.encode()
    i = at % (len(raw) + 1)
    if how == "flip":
        j = min(i, len(raw) - 1)
        return raw[:j] + bytes([raw[j] ^ (1 << (at % 8))]) + raw[j + 1 :]
    if how == "cut":
        return raw[:i]
    if how == "latin1":
        return raw + "name: café\n".encode("latin-1")
    if how == "bomb":
        lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
        for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
            lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
        return ("\n".join(lines) + "\n").encode()
    return raw[:i] + snippet.encode("utf-8", "surrogatepass") + raw[i:]


def test_damaged_configs_exit_0_or_2(worker, place):
    @_settings(25)
    @given(damage=config_damage())
    def case(damage):
        folder = _fresh(place)
        config = folder / "config.yaml"
        try:
            config.write_bytes(_damaged_config(*damage))
        except UnicodeEncodeError:
            return
        worker.run(
            [
                "features",
                "--data",
                str(place["data"]),
                "--as-of",
                "2024-12-01",
                "--out",
                str(folder / "f.parquet"),
                "--config",
                str(config),
                "--quiet",
            ],
            folder,
            "config",
        )
        shutil.rmtree(folder, ignore_errors=True)

    case()


# ---------------------------------------------------------------------------------------------
# odd arguments

DATES = st.one_of(
    st.sampled_from(
        [
            "0001-01-01",
            "9999-12-31",
            "2262-04-12",
            "1677-09-21",
            "2024-02-30",
            "2024-13-01",
            "",
            " ",
            "NaT",
            "1e20",
            "-1",
            "2000-01-01",
            "2024-12-01T23:59:59.999999+14:00",
            "2024-12-01,2300-01-01",
            "2023-06-01,2024-06-01",
        ]
    ),
    st.datetimes().map(lambda d: d.isoformat()),
    st.text(max_size=16).filter(lambda s: "\x00" not in s),
)


@st.composite
def odd_arguments(draw):
    command = draw(st.sampled_from(["features", "score"]))
    out = draw(
        st.sampled_from(["under_file", "folder", "suffix", "no_suffix", "deep", "ok", "dot", "gz"])
    )
    return command, draw(DATES), out, draw(st.sampled_from(["ok", "missing", "file"]))


def test_odd_arguments_exit_0_or_2(worker, place):
    @_settings(25)
    @given(args=odd_arguments())
    def case(args):
        command, date, out_kind, bundle_kind = args
        folder = _fresh(place)
        (folder / "plain").write_text("a file")
        out = {
            "under_file": folder / "plain" / "x.csv",
            "folder": folder,
            "suffix": folder / "x.xlsx",
            "no_suffix": folder / "x",
            "deep": folder / "a" / "b" / "x.parquet",
            "ok": folder / "x.csv",
            "dot": Path("."),
            "gz": folder / "x.csv.gz",
        }[out_kind]
        argv = [command, "--data", str(place["data"]), "--as-of", date, "--out", str(out)]
        argv += ["--config", str(place["root"] / "notrack.yaml"), "--quiet"]
        if command == "score":
            bundle = {
                "ok": place["bundle"],
                "missing": folder / "none",
                "file": folder / "plain",
            }[bundle_kind]
            argv += ["--bundle", str(bundle)]
        rc, err = worker.run(argv, folder, "arguments")
        if out_kind in ("under_file", "folder", "suffix", "no_suffix", "dot"):
            assert rc == 2
        shutil.rmtree(folder, ignore_errors=True)

    case()
