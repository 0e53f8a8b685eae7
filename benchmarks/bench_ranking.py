"""Ranking an RDM's upper triangle: rsaflow.ranking vs the argsort-based ranking it replaces and scipy.

    python benchmarks/bench_ranking.py            # N=10,000 stimuli: P = 49,995,000 values (about 5 minutes on 2 cores)
    python benchmarks/bench_ranking.py --quick    # N=1,000, a few seconds

What is timed (medians over --repeats after one warm-up, round-robin so that other load hits all alike),
on two float64 inputs of P = N (N - 1) / 2 values shaped like RDM triangles:

- "distances": sqrt of a sum of squares (continuous values) with 0.2 % exact zeros (duplicate stimuli);
- "heavy ties": the same rounded to 3 significant digits (a few thousand distinct values).

Rows: ``rsaflow.ranking.ranks_and_ties`` (ours; what rsaflow.compare.ranks_and_ties now runs) against
the argsort-based ``rsaflow.compare.ranks_and_ties`` of before (its np.argsort path, still there for
NaN/Inf input), ``scipy.stats.rankdata(method='average')`` (timed once) and, for information, a bare
``np.argsort`` and ``np.sort``. ``rsaflow.ranking.argsort`` (used for the bootstrap's weighted ranks) against
``np.argsort``. Exactness: the ranks are compared with rankdata's bit for bit (np.array_equal) and the
tie count with np.unique's counts. Peak memory: each ranking in a fresh subprocess, VmHWM minus VmRSS
after the input was made (from /proc/self/status), in units of S = 8 P bytes.
Targets: ours >= 3x faster than the argsort-based ranking at N = 10,000; peak memory not above it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's rsaflow
from _common import fmt_s, limit_threads, machine, met, print_table, timeit, timeit_interleaved, versions


def make_values(n: int, kind: str, seed: int = 0) -> np.ndarray:
    """P = n (n - 1) / 2 float64 values like an RDM triangle (see the module docstring)."""
    p = n * (n - 1) // 2
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(p)
    v *= v
    v += rng.gamma(8.0, size=p)
    np.sqrt(v, out=v)
    v[rng.integers(0, p, p // 500)] = 0.0
    if kind == "heavy ties":
        np.round(v, 2, out=v)  # values ~1..6: 3 significant digits
    return v


def old_ranks_and_ties(values):
    """rsaflow.compare.ranks_and_ties as it was before rsaflow.ranking: its np.argsort path."""
    from rsaflow import compare, ranking

    with mock.patch.object(ranking, "_fast_path", lambda v: None):  # every input takes the np.argsort path
        return compare.ranks_and_ties(values)


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def rss_case(spec: str) -> int:
    """Child process: make the input, run one ranking, print its peak RSS beyond the input (bytes)."""
    n, kind, which = json.loads(spec)
    values = make_values(n, kind)
    funcs = _funcs()
    funcs[which](values[:20_000])  # load the code
    before = _vm("VmRSS")
    funcs[which](values)
    print(json.dumps({"peak": _vm("VmHWM") - before}))
    return 0


def _funcs() -> dict:
    from scipy.stats import rankdata

    from rsaflow import ranking

    return {"ours": ranking.ranks_and_ties, "argsort-based (before)": old_ranks_and_ties,
            "scipy rankdata": lambda v: rankdata(v, method="average")}


def peak_bytes(n: int, kind: str, which: str) -> int:
    out = subprocess.run([sys.executable, __file__, "--rss-case", json.dumps([n, kind, which])],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak"]


def bench_kind(n: int, kind: str, repeats: int, rows: list) -> bool:
    from rsaflow import ranking

    values = make_values(n, kind)
    s = values.nbytes
    f = _funcs()
    res = timeit_interleaved({"ours": lambda: f["ours"](values),
                              "argsort-based (before)": lambda: f["argsort-based (before)"](values),
                              "ranking.argsort": lambda: ranking.argsort(values),
                              "np.argsort": lambda: np.argsort(values),
                              "np.sort": lambda: np.sort(values)}, repeats)
    res["scipy rankdata"] = timeit(lambda: f["scipy rankdata"](values), 1, warmup=0)  # once: slow, for information
    ours, ties = res["ours"][1]
    old, old_ties = res["argsort-based (before)"][1]
    _, counts = np.unique(values, return_counts=True)
    ref_ties = int((counts * (counts - 1) // 2).sum())
    exact = bool(np.array_equal(ours, res["scipy rankdata"][1]) and np.array_equal(ours, old)
                 and ties == ref_ties == old_ties)
    order = res["ranking.argsort"][1]
    sorted_ok = bool(np.array_equal(values[order], np.sort(values)))
    t_ours, t_old = res["ours"][0], res["argsort-based (before)"][0]
    print(f"\n{kind}: P={values.size:,} ({len(counts):,} distinct, {ref_ties:,} tied pairs); "
          f"ranks bit-equal to rankdata and to the argsort-based ranking, ties exact: {exact}")
    for name in ("argsort-based (before)", "scipy rankdata", "np.argsort", "np.sort", "ranking.argsort"):
        print(f"  {name}: {fmt_s(res[name][0])}")
    peaks = {w: peak_bytes(n, kind, w) for w in ("ours", "argsort-based (before)")}
    rows.append(dict(what=f"{kind}: ranks_and_ties vs argsort-based", ours=fmt_s(t_ours), reference=fmt_s(t_old),
                     ratio=f"speed-up {t_old / t_ours:.2f}x", target=">= 3x", met=met(t_old / t_ours >= 3)))
    t_sp = res["scipy rankdata"][0]
    rows.append(dict(what=f"{kind}: ranks_and_ties vs scipy rankdata", ours=fmt_s(t_ours), reference=fmt_s(t_sp),
                     ratio=f"speed-up {t_sp / t_ours:.2f}x", target="(info)"))
    t_a, t_np = res["ranking.argsort"][0], res["np.argsort"][0]
    rows.append(dict(what=f"{kind}: ranking.argsort vs np.argsort", ours=fmt_s(t_a), reference=fmt_s(t_np),
                     ratio=f"speed-up {t_np / t_a:.2f}x", target="exact order", met=met(sorted_ok)))
    rows.append(dict(what=f"{kind}: peak memory beyond the input", ours=f"{peaks['ours'] / s:.2f} S",
                     reference=f"{peaks['argsort-based (before)'] / s:.2f} S", ratio=f"S = {s / 1e6:.0f} MB",
                     target="<= reference", met=met(peaks["ours"] <= peaks["argsort-based (before)"])))
    rows.append(dict(what=f"{kind}: exact (rankdata bit for bit, tie count)", ours=str(exact), target="True",
                     met=met(exact)))
    return exact and sorted_ok


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=10_000, help="stimuli: P = N (N - 1) / 2 values (target: 10000)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="smoke run: N=1000, 1 repeat")
    p.add_argument("--rss-case", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rss_case:
        return rss_case(args.rss_case)
    if args.quick:
        args.n, args.repeats = 1000, 1
    limit_threads(1)
    print(f"machine: {machine()}")
    print(versions("numpy", "scipy"))
    rows = []
    ok = all([bench_kind(args.n, kind, args.repeats, rows) for kind in ("distances", "heavy ties")])
    print_table(f"ranking N={args.n} (P={args.n * (args.n - 1) // 2:,}), medians of {args.repeats}", rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
