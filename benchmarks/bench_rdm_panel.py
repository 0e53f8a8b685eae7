"""One panel of the RDM figure (rule ``rdm_figure``) read from an RDM file: the percentiles of the
drawn rows from the file's stored ranks (``rsaflow.jobs.figure_inputs.load_percentiles``) against
the square plus a sort of all N^2 entries that the panel used before
(``figure_data.display_percentiles(load_rdm(record), rows)``), same file, same run, interleaved;
the two blocks must be equal bit for bit. Peak memory: each path once in a fresh child process
(VmHWM from /proc/self/status, beyond the child's RSS before the panel).

    python benchmarks/bench_rdm_panel.py [--n 10000] [--repeats 3]
    python benchmarks/bench_rdm_panel.py --quick      # N=2,000, 2 repeats
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import fmt_s, machine, print_table, timeit_interleaved, versions
from rsaflow import figure_data
from rsaflow.jobs import figure_inputs
from rsaflow.jobs.per_layer import write_rdm_file


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def child(path: str, which: str, n: int) -> None:
    """One panel by ``which`` (sort or ranks) on the file ``path``; prints its peak RSS beyond the start."""
    record, rows = {"path": path}, np.arange(0, n, -(-n // figure_data.MAX_PANEL_STIMULI))
    before = _vm("VmRSS")
    if which == "sort":
        figure_data.display_percentiles(figure_inputs.load_rdm(record), rows)
    else:
        figure_inputs.load_percentiles(record, rows)
    print(json.dumps({"peak": _vm("VmHWM") - before}))


def peak(path: Path, which: str, n: int) -> int:
    out = subprocess.run([sys.executable, __file__, "--child", which, "--path", str(path), "--n", str(n)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="N=2,000, 2 repeats")
    ap.add_argument("--child", choices=["sort", "ranks"], help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.path, args.child, args.n)
    if args.quick:
        args.n, args.repeats = 2000, 2
    n = args.n
    print(f"machine: {machine()}")
    print(versions("numpy", "h5py"))
    rng = np.random.default_rng(0)
    values = np.round(np.abs(rng.normal(size=n * (n - 1) // 2)), 3)  # ties, as rounded distances have
    rows = np.arange(0, n, -(-n // figure_data.MAX_PANEL_STIMULI))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rdm.h5"
        write_rdm_file(path, values, {"model": "m", "layer": "l", "node_index": 0, "stimulus_digest": "d"}, "bench")
        del values
        record = {"path": str(path)}
        old = figure_data.display_percentiles(figure_inputs.load_rdm(record), rows)
        new = figure_inputs.load_percentiles(record, rows)
        equal = bool(np.array_equal(old, new))
        times = timeit_interleaved({
            "sort": lambda: figure_data.display_percentiles(figure_inputs.load_rdm(record), rows),
            "ranks": lambda: figure_inputs.load_percentiles(record, rows),
        }, args.repeats)
        peaks = {which: peak(path, which, n) for which in ("sort", "ranks")}
    t_sort, t_ranks = times["sort"][0], times["ranks"][0]
    print(f"\nN={n}, {rows.size} rows drawn, medians of {args.repeats}; blocks equal bit for bit: {equal}")
    print_table(f"RDM panel at N={n}", [
        {"what": "one panel: stored ranks vs square + N^2 sort", "ours": fmt_s(t_ranks), "reference": fmt_s(t_sort),
         "ratio": f"{t_sort / t_ranks:.1f}x faster", "target": "(info)", "met": "-"},
        {"what": "16 panels (the figure's cap)", "ours": fmt_s(16 * t_ranks), "reference": fmt_s(16 * t_sort),
         "ratio": f"{t_sort / t_ranks:.1f}x", "target": "equal blocks", "met": "yes" if equal else "NO"},
        {"what": "one panel's peak RSS beyond the start (child, VmHWM)", "ours": f"{peaks['ranks'] / 2**20:.0f} MiB",
         "reference": f"{peaks['sort'] / 2**20:.0f} MiB", "ratio": f"{peaks['ranks'] / peaks['sort']:.2f}",
         "target": "(info)", "met": "-"},
    ])


if __name__ == "__main__":
    main()
