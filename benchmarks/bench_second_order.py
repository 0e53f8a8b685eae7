"""Second-order comparison (1 - Spearman rho between RDMs): rsaflow vs the tutorial's loop and rsatoolbox.

    python benchmarks/bench_second_order.py            # the targets' sizes (about 2-4 minutes on 2 cores)
    python benchmarks/bench_second_order.py --quick    # smoke run, a few seconds

What is timed (same inputs, same run, medians over --repeats; ours and rsatoolbox measured round-robin
so that other load affects both alike; ours warmed up once, the slow references not):

- ours cold: ``compare.unit_vectors(K vectors, 'spearman', threads)`` (K rankings, --threads at a time,
  as the workflow's RDM jobs run --cores at a time) + one ``compare.aggregate(.., 'spearman')``, from the K
  upper triangles; also with one thread (rsatoolbox ranks with scipy in one thread; both get --threads
  BLAS threads);
- ours incremental: after adding one RDM, 1 x ``unit_vector`` + ``aggregate`` over
  the K+1 stacked vectors, with the K stored vectors (a) already in memory and (b) read back from
  K RDM files of the workflow (rsaflow.rdmfile; page cache warm);
- rsatoolbox: ``rsatoolbox.rdm.compare(rdms, rdms, method='spearman')`` on a prebuilt ``RDMs``
  object (construction not timed), cold with K RDMs and the full recompute with K+1;
- the tutorial: a double loop over all ordered pairs (i != j) of K full RDMs, each extracting both
  upper triangles with a boolean triu mask and calling ``scipy.stats.spearmanr`` (torch tensors as
  in the tutorial when torch is importable, numpy otherwise), at --loop-k x --loop-n.

Agreement: the max absolute difference of the K x K matrices is printed and must be <= 1e-10.
Memory: the peak of the arrays each cold side allocates (tracemalloc; the K input vectors excluded).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import (fmt_s, limit_threads, machine, met, print_table, rsatoolbox_or_none, timeit, timeit_interleaved,
                     traced_peak, versions)

TOL = 1e-10


def make_rdms(k: int, n: int, seed: int = 0) -> list[np.ndarray]:
    """K upper triangles of N x N RDMs sharing a latent geometry; every 4th one coarsely rounded (ties)."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 8))
    diff2 = ((latent[:, None, :] - latent[None, :, :]) ** 2).sum(-1)
    base = np.sqrt(diff2[np.triu_indices(n, k=1)])
    out = []
    for i in range(k):
        v = base + rng.uniform(0.2, 3.0) * rng.standard_normal(base.size)
        v = np.abs(v)
        if i % 4 == 3:
            v = np.round(v, 1)  # many ties: the average-rank tie handling is exercised
        out.append(v)
    return out


def squareform_rdm(v: np.ndarray, n: int) -> np.ndarray:
    rdm = np.zeros((n, n))
    rdm[np.triu_indices(n, k=1)] = v
    return rdm + rdm.T


def ours_cold(vectors: list[np.ndarray], threads: int = 1) -> np.ndarray:
    from rsaflow.compare import aggregate, unit_vectors

    return aggregate(unit_vectors(vectors, "spearman", threads=threads), "spearman")


def tutorial_loop(full_rdms: list) -> np.ndarray:
    """The tutorial's second-order step: spearmanr over every ordered pair in a double loop."""
    from scipy.stats import spearmanr

    try:
        import torch

        def upper(m):
            mask = torch.triu(torch.ones_like(m, dtype=torch.bool), diagonal=1)
            return m[mask]
    except ImportError:
        torch = None

        def upper(m):
            mask = np.triu(np.ones_like(m, dtype=bool), k=1)
            return m[mask]

    k = len(full_rdms)
    out = np.zeros((k, k))
    for row, a in enumerate(full_rdms):
        for col, b in enumerate(full_rdms):
            if row == col:
                continue
            out[row, col] = 1 - spearmanr(upper(a), upper(b)).statistic
    return out


def rsatoolbox_second_order(rsatoolbox, rdms_obj) -> np.ndarray:
    sim = rsatoolbox.rdm.compare(rdms_obj, rdms_obj, method="spearman")
    return 1.0 - sim


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--k", type=int, default=100, help="number of RDMs (target: 100)")
    p.add_argument("--n", type=int, default=1000, help="stimuli per RDM (target: 1000)")
    p.add_argument("--loop-k", type=int, default=64, help="RDMs for the tutorial-loop comparison (target: 64)")
    p.add_argument("--loop-n", type=int, default=100, help="stimuli for the tutorial-loop comparison (target: 100)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--loop-repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="small smoke run (K=12, N=200, loop K=12, N=60)")
    args = p.parse_args(argv)
    if args.quick:
        args.k, args.n, args.loop_k, args.loop_n, args.repeats, args.loop_repeats = 12, 200, 12, 60, 3, 2
    limit_threads(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass

    from rsaflow.compare import aggregate, unit_vector

    print(f"machine: {machine()}; threads: {args.threads}")
    print(versions("numpy", "scipy", "torch", "rsatoolbox"))
    rsatoolbox = rsatoolbox_or_none()
    rows = []

    # --- K x N: ours vs rsatoolbox -------------------------------------------------------------
    k, n = args.k, args.n
    print(f"\nsecond order, Spearman, K={k} RDMs (+1 added), N={n} stimuli ({n * (n - 1) // 2} pairs)")
    vecs = make_rdms(k + 1, n)
    old, new = vecs[:k], vecs[k]

    stored = np.stack([unit_vector(v, "spearman") for v in old])

    def incremental_mem():
        u = unit_vector(new, "spearman")
        return aggregate(np.vstack([stored, u[None, :]]), "spearman")

    tmpdir = tempfile.TemporaryDirectory()
    import h5py

    from rsaflow import rdmfile

    paths = []
    for i, v in enumerate(old):
        path = Path(tmpdir.name) / f"rdm{i}.h5"
        rdmfile.write(path, v, {"model": f"m{i}", "layer": "l", "stimulus_digest": "bench"})
        paths.append(path)

    def incremental_disk():
        units = []
        for path in paths:
            with h5py.File(path, "r") as f:
                units.append(rdmfile.vector_chunk(f, "spearman"))
        units.append(unit_vector(new, "spearman"))
        return aggregate(np.stack(units), "spearman")

    funcs = {"cold": lambda: ours_cold(old, args.threads), "cold1": lambda: ours_cold(old, 1),
             "inc": incremental_mem, "inc_disk": incremental_disk}
    warm = {"cold": 1, "cold1": 1, "inc": 1, "inc_disk": 1}
    if rsatoolbox is not None:
        rdms_k = rsatoolbox.rdm.RDMs(dissimilarities=np.stack(old))
        rdms_k1 = rsatoolbox.rdm.RDMs(dissimilarities=np.stack(vecs))
        funcs["rt"] = lambda: rsatoolbox_second_order(rsatoolbox, rdms_k)
        funcs["rt1"] = lambda: rsatoolbox_second_order(rsatoolbox, rdms_k1)
        warm.update(rt=0, rt1=0)
    res = timeit_interleaved(funcs, args.repeats, warm)
    tmpdir.cleanup()
    (t_cold, m_cold), (t_inc, m_inc), (t_inc_disk, m_inc_disk) = res["cold"], res["inc"], res["inc_disk"]
    t_cold1, m_cold1 = res["cold1"]
    assert np.array_equal(m_inc, m_inc_disk) and np.array_equal(m_cold, m_cold1)
    print(f"ours cold (K rankings, {args.threads} threads, + aggregate): {fmt_s(t_cold)}; one thread: {fmt_s(t_cold1)}")
    print(f"ours incremental, stored vectors in memory:  {fmt_s(t_inc)}")
    print(f"ours incremental, stored vectors read from {k} HDF5 files: {fmt_s(t_inc_disk)}")

    if rsatoolbox is not None:
        (t_rt, m_rt), (t_rt1, m_rt1) = res["rt"], res["rt1"]
        # rsatoolbox's diagonal is 1 - (rounded) 1; ours is exactly 0: compare off-diagonal entries.
        off = ~np.eye(k, dtype=bool)
        err = float(np.abs(m_rt[off] - m_cold[off]).max())
        off1 = ~np.eye(k + 1, dtype=bool)
        err1 = float(np.abs(m_rt1[off1] - m_inc[off1]).max())
        print(f"rsatoolbox compare K={k}: {fmt_s(t_rt)}, K+1 recompute: {fmt_s(t_rt1)}; "
              f"max |diff| vs ours {err:.2e} / {err1:.2e}")
        ok_num = err <= TOL and err1 <= TOL
        rows.append(dict(what=f"cold K={k} N={n} vs rsatoolbox ({args.threads} threads)", ours=fmt_s(t_cold),
                         reference=fmt_s(t_rt), ratio=f"{t_rt / t_cold:.2f}x", target=">= 10x",
                         met=met(t_rt / t_cold >= 10 and ok_num)))
        rows.append(dict(what=f"cold K={k} N={n} vs rsatoolbox (ranking in 1 thread)", ours=fmt_s(t_cold1),
                         reference=fmt_s(t_rt), ratio=f"{t_rt / t_cold1:.2f}x", target="-", met="-"))
        rows.append(dict(what="incremental +1 (vectors in memory) vs rsatoolbox K+1", ours=fmt_s(t_inc),
                         reference=fmt_s(t_rt1), ratio=f"{t_rt1 / t_inc:.1f}x", target=">= 20x",
                         met=met(t_rt1 / t_inc >= 20 and ok_num)))
        rows.append(dict(what=f"incremental +1 (read {k} HDF5) vs rsatoolbox K+1", ours=fmt_s(t_inc_disk),
                         reference=fmt_s(t_rt1), ratio=f"{t_rt1 / t_inc_disk:.1f}x", target=">= 20x",
                         met=met(t_rt1 / t_inc_disk >= 20 and ok_num)))
        rows.append(dict(what="agreement with rsatoolbox (max |diff|)", ours=f"{max(err, err1):.1e}",
                         target=f"<= {TOL:g}", met=met(ok_num)))
        # memory: the arrays each side allocates for the cold K x K (inputs, K x P float64, excluded)
        peak_ours = traced_peak(lambda: ours_cold(old, args.threads))
        peak_rt = traced_peak(lambda: rsatoolbox_second_order(rsatoolbox, rdms_k))
        inputs = k * old[0].size * 8
        print(f"peak array memory (tracemalloc), cold: ours {peak_ours / 2**20:.0f} MiB, rsatoolbox "
              f"{peak_rt / 2**20:.0f} MiB; the inputs: {inputs / 2**20:.0f} MiB")
        rows.append(dict(what=f"cold K={k} N={n}: peak array memory (tracemalloc, inputs excluded) vs rsatoolbox",
                         ours=f"{peak_ours / 2**20:.0f} MiB", reference=f"{peak_rt / 2**20:.0f} MiB",
                         ratio=f"{peak_ours / peak_rt:.2f}x", target="-", met="-"))
    else:
        rows.append(dict(what="cold / incremental vs rsatoolbox", met="skipped (rsatoolbox not installed)"))

    # --- tutorial loop ---------------------------------------------------------------------------
    lk, ln = args.loop_k, args.loop_n
    print(f"\ntutorial loop vs ours, K={lk}, N={ln}")
    lvecs = make_rdms(lk, ln, seed=1)
    try:
        import torch

        full = [torch.from_numpy(squareform_rdm(v, ln)) for v in lvecs]
        kind = "torch"
    except ImportError:
        full = [squareform_rdm(v, ln) for v in lvecs]
        kind = "numpy"
    full_np = [squareform_rdm(v, ln) for v in lvecs]

    def ours_from_full():
        from rsaflow.rdm import upper_triangle

        return ours_cold([upper_triangle(r) for r in full_np])

    t_ours_l, m_ours_l = timeit(ours_from_full, args.repeats)
    t_loop, m_loop = timeit(lambda: tutorial_loop(full), args.loop_repeats, warmup=0)
    err_l = float(np.abs(m_loop - m_ours_l).max())
    print(f"ours (from full RDMs, incl. upper_triangle): {fmt_s(t_ours_l)}; tutorial loop ({kind}): {fmt_s(t_loop)}; "
          f"max |diff| {err_l:.2e}")
    rows.append(dict(what=f"cold K={lk} N={ln} vs tutorial loop", ours=fmt_s(t_ours_l), reference=fmt_s(t_loop),
                     ratio=f"{t_loop / t_ours_l:.0f}x", target=">= 100x",
                     met=met(t_loop / t_ours_l >= 100 and err_l <= TOL)))
    rows.append(dict(what="agreement with tutorial loop (max |diff|)", ours=f"{err_l:.1e}", target=f"<= {TOL:g}",
                     met=met(err_l <= TOL)))

    print_table("second order (Spearman)", rows)
    if args.quick:
        print("(--quick: sizes below the targets; 'met' refers to the targets' ratios only as a smoke check)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
