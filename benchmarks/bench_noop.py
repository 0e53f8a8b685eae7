"""No-op reruns: how long `snakemake -n` and a real run take when nothing is to do.

Builds the offline demo (workflow/config/demo.yaml) once in a temporary folder, then times, as
whole processes, `snakemake -n` and `snakemake` there (nothing to do), and `snakemake -n` on the
default (tutorial) config (DAG only: its inputs need a download). The reference in the same run
is `snakemake --version` (Snakemake's own start-up, the floor). Target: both no-op runs < 3 s.

    python benchmarks/bench_noop.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, fmt_s, machine, met, print_table, versions


def wall(cmd, cwd) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 repeats")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    print(machine())
    print(versions("snakemake"))
    sm = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
    with tempfile.TemporaryDirectory() as work:
        demo = [*sm, "-d", work, "--configfile", str(REPO / "workflow" / "config" / "demo.yaml")]
        print("building the demo once ...", flush=True)
        subprocess.run([*demo, "--cores", "2", "-q"], check=True, capture_output=True)
        cmds = {
            "snakemake --version (floor)": [sys.executable, "-m", "snakemake", "--version"],
            "demo: snakemake -n (nothing to do)": [*demo, "-n"],
            "demo: snakemake (nothing to do)": [*demo, "--cores", "2"],
            "default config: snakemake -n": [*sm, "-d", work + "/tutorial_dag", "-n"],
        }
        times = {name: [] for name in cmds}
        for _ in range(repeats):  # interleaved, so machine noise hits all alike
            for name, cmd in cmds.items():
                times[name].append(wall(cmd, work))
    floor = statistics.median(times["snakemake --version (floor)"])
    rows = []
    for name, values in times.items():
        med = statistics.median(values)
        is_target = "nothing to do" in name
        rows.append({"what": name, "ours": fmt_s(med), "reference": fmt_s(floor), "ratio": f"{med / floor:.2f}x",
                     "target": "< 3 s" if is_target else None, "met": met(med < 3.0) if is_target else None})
    print_table(f"no-op reruns (medians of {repeats}, whole processes)", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
