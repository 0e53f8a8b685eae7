"""One panel of the RDM figure (rule ``rdm_figure``) read from an RDM file: the percentiles of the
drawn rows from the file's stored ranks (``rsaflow.jobs.figure_inputs.load_percentiles``) against
the square plus a sort of all N^2 entries that the panel used before
(``figure_data.display_percentiles(load_rdm(record), rows)``), same file, same run, interleaved;
the two blocks must be equal bit for bit. Peak memory is not measured here: the ranks path holds the
two stored vectors (N^2 float64 in all), the sort path the square and its sorted copy (2 N^2).

    python benchmarks/bench_rdm_panel.py [--n 10000] [--repeats 3]
    python benchmarks/bench_rdm_panel.py --quick      # N=2,000, 2 repeats
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from _common import fmt_s, machine, print_table, timeit_interleaved, versions
from rsaflow import figure_data
from rsaflow.jobs import figure_inputs
from rsaflow.jobs.per_layer import write_rdm_file


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="N=2,000, 2 repeats")
    args = ap.parse_args(argv)
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
    t_sort, t_ranks = times["sort"][0], times["ranks"][0]
    print(f"\nN={n}, {rows.size} rows drawn, medians of {args.repeats}; blocks equal bit for bit: {equal}")
    print_table(f"RDM panel at N={n}", [
        {"what": "one panel: stored ranks vs square + N^2 sort", "ours": fmt_s(t_ranks), "reference": fmt_s(t_sort),
         "ratio": f"{t_sort / t_ranks:.1f}x faster", "target": "(info)", "met": "-"},
        {"what": "16 panels (the figure's cap)", "ours": fmt_s(16 * t_ranks), "reference": fmt_s(16 * t_sort),
         "ratio": f"{t_sort / t_ranks:.1f}x", "target": "equal blocks", "met": "yes" if equal else "NO"},
    ])


if __name__ == "__main__":
    main()
