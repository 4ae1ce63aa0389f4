"""The driver report for 1M customers, against scoring the same customers.

Data and model as in ``bench_score.py`` (a generated retailer of 1,000,000 customers cached in
benchmarks/.data/, a VIP bundle trained on 50,000 customers). Each side runs in a fresh process
after loading the tables:

* score: ``vipml.score.score`` (features, contributions, reasons, selection);
* report: ``vipml.report.build_report`` (which scores too, then the Pareto picture, drivers on a
  seeded sample, the VIP-vs-regular and converters comparisons over every customer, segment
  profiles) and both pages rendered and written.

Target: the report at most 3x the scoring run; peak memory under 12 GiB; a page under 200 KB.

    python benchmarks/bench_report.py [--customers 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".data"

CHILD = r"""
import json, resource, sys, time
folder, bundle_path, mode, out = sys.argv[1:5]
from vipml import load_tables
from vipml.bundle import load_bundle
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
bundle = load_bundle(bundle_path)
tables, report = load_tables(folder)
t0 = time.perf_counter()
res = {}
if mode == "score":
    from vipml.score import score
    res["rows"] = len(score(tables, bundle, as_of="2025-01-01").targets)
else:
    from vipml.report import build_report, write_report
    data = build_report(tables, bundle, as_of="2025-01-01", validation=report)
    res["built_s"] = time.perf_counter() - t0
    sizes = [write_report(data, f"{out}.{lang}.html", lang=lang).stat().st_size for lang in ("en", "ko")]
    res["page_kb"] = max(sizes) / 1024
res["work_s"] = time.perf_counter() - t0
res["peak_gib"] = peak()
print(json.dumps(res))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from bench_score import score_data  # the same cached retailer and bundle

    folder, bundle = score_data(args.customers)
    runs = {}
    for mode in ("score", "report"):
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(folder), str(bundle), mode, str(CACHE / "report")],
            capture_output=True,
            text=True,
        )
        if proc.returncode:
            sys.exit(f"{mode} failed:\n{proc.stderr[-3000:]}")
        runs[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(mode, json.dumps(runs[mode]), flush=True)
    s, r = runs["score"]["work_s"], runs["report"]["work_s"]
    print(
        f"score {s:.1f} s; report (both languages) {r:.1f} s; ratio {r / s:.2f}x (target <= 3); "
        f"peak {runs['report']['peak_gib']:.2f} GiB (target < 12); "
        f"page {runs['report']['page_kb']:.0f} KB (target < 200)"
    )


if __name__ == "__main__":
    main()
