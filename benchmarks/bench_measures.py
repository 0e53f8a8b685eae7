"""New comparison measures (rsaflow.measures): per-layer and per-pair cost vs rsatoolbox, same inputs.

For each N: two random layers (N x 512, N x 2048; Grams precomputed, as the per-layer artifact).
Times (medians, interleaved with the reference where there is one):
- cka / cka_debiased / cka_rbf: per layer ``cka_vector`` (N^2 floats), per pair a dot product;
- shape (alpha 0.5) and bures: per layer ``shape_factor`` (one eigh), per pair
  ``shape_distance_factors``; reference: rsatoolbox ``compare(method='bures')`` on the two RDMs;
- cosine_cov: per RDM ``cov_vector``, per pair a dot product; reference rsatoolbox
  ``compare(method='cosine_cov')``;
- noise ceiling of S subjects' RDMs (spearman, cosine_cov) vs ``rsatoolbox.inference.boot_noise_ceiling``.
Peak RSS (VmHWM) is printed at the end. Usage: python benchmarks/bench_measures.py [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import fmt_s, limit_threads, machine, print_table, rsatoolbox_or_none, timeit_interleaved, versions

from rsaflow import ceiling
from rsaflow import measures as ms
from rsaflow.methods import METHODS


def vmhwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_n(n: int, repeats: int, rsa, rows: list) -> None:
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=(n, 512)), rng.normal(size=(n, 2048))
    k, l = x @ x.T, y @ y.T
    iu = np.triu_indices(n, k=1)
    a, b = ms.sq_distances(k)[iu], ms.sq_distances(l)[iu]
    for name, kw in (("linear", {}), ("debiased", {"debiased": True}), ("rbf", {"kernel": "rbf"})):
        r = timeit_interleaved({"layer": lambda kw=kw: ms.cka_vector(k, **kw)}, repeats)
        v = ms.cka_vector(k, **kw)
        w = ms.cka_vector(l, **kw)
        p = timeit_interleaved({"pair": lambda: v @ w}, repeats)
        rows.append({"what": f"N={n} cka {name}: per layer / per pair", "ours": f"{fmt_s(r['layer'][0])} / "
                     f"{fmt_s(p['pair'][0])}"})
    fk, fl = ms.shape_factor(k, 1.0), ms.shape_factor(l, 1.0)
    funcs = {"layer": lambda: ms.shape_factor(k, 0.5), "pair": lambda: ms.shape_distance_factors(fk, fl)}
    if rsa is not None:
        ra, rb = rsa.rdm.RDMs(a[None]), rsa.rdm.RDMs(b[None])
        funcs["rsatoolbox bures"] = lambda: rsa.rdm.compare(ra, rb, method="bures")[0, 0]
    t = timeit_interleaved(funcs, repeats)
    ours_pair = 2 * t["layer"][0] + t["pair"][0]
    row = {"what": f"N={n} bures/shape: layer + layer + pair", "ours": fmt_s(ours_pair)}
    if rsa is not None:
        diff = abs(np.cos(t["pair"][1]) - t["rsatoolbox bures"][1])
        row.update(reference=fmt_s(t["rsatoolbox bures"][0]), ratio=f"{t['rsatoolbox bures'][0] / ours_pair:.2f}x",
                   met=f"|diff| {diff:.1e}")
    rows.append(row)
    rows.append({"what": f"N={n} shape: per layer / per pair", "ours": f"{fmt_s(t['layer'][0])} / "
                 f"{fmt_s(t['pair'][0])}"})
    funcs = {"ours": lambda: ms.cosine_cov(a, b)}
    if rsa is not None:
        funcs["rsatoolbox"] = lambda: rsa.rdm.compare(ra, rb, method="cosine_cov")[0, 0]
    t = timeit_interleaved(funcs, repeats)
    row = {"what": f"N={n} cosine_cov one pair (2 cov_vector + dot)", "ours": fmt_s(t["ours"][0])}
    if rsa is not None:
        row.update(reference=fmt_s(t["rsatoolbox"][0]), ratio=f"{t['rsatoolbox'][0] / t['ours'][0]:.2f}x",
                   met=f"|diff| {abs(t['ours'][1] - t['rsatoolbox'][1]):.1e}")
    rows.append(row)


def bench_ceiling(n: int, s: int, repeats: int, rsa, rows: list) -> None:
    rng = np.random.default_rng(s)
    subs = np.abs(rng.random(n * (n - 1) // 2) + rng.normal(0, 0.5, (s, n * (n - 1) // 2)))
    for method in ("spearman", "cosine_cov"):
        funcs = {"ours": lambda m=method: ceiling.noise_ceiling(subs, m)}
        if rsa is not None:
            import rsatoolbox.inference

            rd = rsa.rdm.RDMs(subs)
            funcs["rsatoolbox"] = lambda m=method: rsatoolbox.inference.boot_noise_ceiling(
                rd, method=METHODS[m].rsatoolbox)
        t = timeit_interleaved(funcs, repeats)
        row = {"what": f"noise ceiling {method}, S={s}, N={n}", "ours": fmt_s(t["ours"][0])}
        if rsa is not None:
            diff = np.max(np.abs(np.subtract(t["ours"][1], t["rsatoolbox"][1])))
            row.update(reference=fmt_s(t["rsatoolbox"][0]), ratio=f"{t['rsatoolbox'][0] / t['ours'][0]:.2f}x",
                       met=f"|diff| {diff:.1e}")
        rows.append(row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="250,500,1000,2000", help="comma-separated N")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="N=100 only, 1 repeat")
    args = ap.parse_args()
    limit_threads(args.threads)
    sizes = [100] if args.quick else [int(v) for v in args.sizes.split(",")]
    repeats = 1 if args.quick else args.repeats
    print(machine())
    print(versions("numpy", "scipy", "rsatoolbox"))
    rsa = rsatoolbox_or_none()
    rows: list[dict] = []
    for n in sizes:
        bench_n(n, repeats, rsa, rows)
    bench_ceiling(100 if args.quick else 500, 10, repeats, rsa, rows)
    print_table("rsaflow.measures (ratio = reference / ours; met column: agreement)", rows)
    print(f"peak RSS (VmHWM): {vmhwm_mib():.0f} MiB")


if __name__ == "__main__":
    main()
