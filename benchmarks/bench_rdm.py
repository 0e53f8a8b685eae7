"""RDMs: rsaflow.rdm.compute_rdm vs one float64 GEMM (the floor), scipy pdist, rsatoolbox; peak RSS of streaming.

    python benchmarks/bench_rdm.py            # N=10,000 x M=4,096 float32 (about 2-3 minutes on 2 cores)
    python benchmarks/bench_rdm.py --quick    # N=1,500 x M=512, a few seconds

What is timed (medians over --repeats after one warm-up, same input; the GEMM and compute_rdm
round-robin so that other load affects both alike):

- floor: ``X64 @ X64.T`` with X64 the input converted to float64 beforehand (numpy runs it as one
  symmetric rank-k update, the same BLAS call the exact method needs);
- ours: ``compute_rdm(X, 'euclidean')`` on the float32 input, and ``rdm_from_h5`` on the same
  matrix stored as an activations file (column-block streaming, includes the HDF5 reads); for
  diagnosis also ``_rdm_from_blocks`` ('sqeuclidean': the unscaled kernel) followed by an in-place /M and sqrt (what
  compute_rdm does, minus the N x N array its ``np.sqrt(d2)`` allocates);
- scipy: ``pdist(X64[:S], 'euclidean')`` on the first S rows (--pdist-n; the full pdist is
  O(N^2 M) on one core), timed against ours on the same S rows;
- rsatoolbox: ``rsatoolbox.rdm.calc_rdm(Dataset(X), method='euclidean')`` (its 'euclidean' is the
  squared distance / M, our 'sqeuclidean');
- the tutorial's float32 torch ``compute_rdm`` (norms trick), for information.

Exactness: the error of each method against float64 pdist on the first S rows, relative to the
largest distance there. The input has an exact duplicate row and a near-duplicate pair inside
those rows, so the exact-zero and the direct-recomputation paths are both exercised.

Correlation and cosine (--metrics): ``compute_rdm(X[:S], metric)`` vs ``pdist(X64[:S], metric)``
(time ratio, error / largest distance, exact zero for the duplicate rows), and the peak RSS of
``rdm_from_h5(dataset, metric)`` on the full N x M file, in a fresh subprocess per metric
(VmHWM from /proc/self/status minus the same process's VmRSS before the call, i.e. after imports,
a warm-up call on a 3 x 4 matrix that loads the code, and opening the file), against the bound 1.5 x N^2 x 8 B + N x block x 8 B x 3 (the block read,
its float64 copy and one temporary), which does not grow with M.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's rsaflow, not an installed one
from _common import (fmt_s, limit_threads, machine, met, print_table, rsatoolbox_or_none, timeit, timeit_interleaved,
                     versions)

EXACT = 1e-10


def make_patterns(n: int, m: int, seed: int = 0) -> np.ndarray:
    """Non-negative float32 'activations' with a low-rank structure, one exact and one near duplicate."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 32)).astype(np.float32) @ rng.standard_normal((32, m)).astype(np.float32)
    x += rng.standard_normal((n, m)).astype(np.float32)
    np.maximum(x, 0, out=x)
    x[1] = x[0]  # identical stimuli: distance exactly 0
    x[3] = x[2] * np.float32(1 + 1e-5)  # near duplicate: the Gram identity cancels, recomputed directly
    return x


def tutorial_rdm(x):
    import torch

    a = torch.from_numpy(x)
    norms = torch.sum(torch.square(a), dim=1, keepdim=True)
    d2 = torch.clamp(norms + norms.T - 2 * torch.mm(a, a.T), min=0.0)
    return torch.sqrt(d2 / a.size(dim=1)).numpy()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=10_000, help="stimuli (target: 10000)")
    p.add_argument("--m", type=int, default=4096, help="units (target: 4096)")
    p.add_argument("--pdist-n", type=int, default=2000, help="rows for the pdist timing and the exactness check")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-h5", action="store_true", help="skip the rdm_from_h5 row")
    p.add_argument("--metrics", default="correlation,cosine",
                   help="streamed metrics besides euclidean for the pdist and peak-RSS rows ('' to skip)")
    p.add_argument("--quick", action="store_true", help="small smoke run (N=1500, M=512, pdist on 500 rows)")
    p.add_argument("--rss-case", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rss_case:
        return rss_case(args.rss_case)
    if args.quick:
        args.n, args.m, args.pdist_n, args.repeats = 1500, 512, 500, 3
    limit_threads(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    from scipy.spatial.distance import pdist, squareform

    from rsaflow.rdm import _rdm_from_blocks, column_blocks, compute_rdm, rdm_from_h5

    n, m, s = args.n, args.m, min(args.pdist_n, args.n)
    print(f"machine: {machine()}; threads: {args.threads}")
    print(versions("numpy", "scipy", "torch", "rsatoolbox"))
    print(f"\nEuclidean RDM, N={n} x M={m} float32; pdist / exactness on the first {s} rows")
    rsatoolbox = rsatoolbox_or_none()
    x = make_patterns(n, m)
    rows = []

    # reference distances on the first s rows (float64 pdist, normalised like ours)
    x64s = x[:s].astype(np.float64)
    t_pdist, ref_v = timeit(lambda: pdist(x64s, "euclidean"), 1, warmup=0)
    ref = squareform(ref_v / np.sqrt(m))
    scale = float(ref.max())

    def rel_err(rdm) -> float:
        return float(np.abs(np.asarray(rdm, dtype=np.float64)[:s, :s] - ref).max() / scale)

    # floor: one float64 GEMM of the same shape
    x64 = x.astype(np.float64)
    def kernel():  # compute_rdm's Euclidean path, but normalised and square-rooted in place
        d2, _ = _rdm_from_blocks(lambda what: column_blocks(x, 4096), n, "sqeuclidean", lambda idx: x[idx])
        d2 /= m
        return np.sqrt(d2, out=d2)

    res = timeit_interleaved({"gemm": lambda: x64 @ x64.T, "ours": lambda: compute_rdm(x, "euclidean"),
                              "kernel": kernel}, args.repeats)
    t_gemm, t_ours, ours, t_kernel = res["gemm"][0], res["ours"][0], res["ours"][1], res["kernel"][0]
    same_kernel = bool(np.array_equal(res["kernel"][1], ours))
    del x64, res
    print(f"floor, float64 X @ X.T ({n}x{m}): {fmt_s(t_gemm)}")
    print(f"_rdm_from_blocks (sqeuclidean) + in-place /M and sqrt: {fmt_s(t_kernel)} ({t_kernel / t_gemm:.2f}x GEMM); "
          f"identical to compute_rdm: {same_kernel}")

    err_ours = rel_err(ours)
    sym = bool(np.array_equal(ours, ours.T))
    zero = bool(ours[0, 1] == 0.0 and np.all(np.diag(ours) == 0.0))
    print(f"ours compute_rdm: {fmt_s(t_ours)} ({t_ours / t_gemm:.2f}x GEMM); error vs pdist {err_ours:.1e} of max; "
          f"exactly symmetric: {sym}; exact 0 for the duplicate rows and diagonal: {zero}; "
          f"near-duplicate d(2,3) = {ours[2, 3]:.3e} (pdist {ref[2, 3]:.3e})")
    rows.append(dict(what=f"compute_rdm vs float64 GEMM (N={n}, M={m})", ours=fmt_s(t_ours), reference=fmt_s(t_gemm),
                     ratio=f"ours/ref {t_ours / t_gemm:.2f}", target="ours/ref <= 1.5", met=met(t_ours / t_gemm <= 1.5)))
    rows.append(dict(what="  kernel only (in-place sqrt), for diagnosis", ours=fmt_s(t_kernel), reference=fmt_s(t_gemm),
                     ratio=f"ours/ref {t_kernel / t_gemm:.2f}", target="(info)", met=met(same_kernel)))
    ok_exact = err_ours <= EXACT and sym and zero
    rows.append(dict(what="exactness vs float64 pdist (max err / max dist)", ours=f"{err_ours:.1e}",
                     target=f"<= {EXACT:g}, symmetric, exact 0s", met=met(ok_exact)))

    # peak memory of compute_rdm (numpy allocations, via tracemalloc), in units of one N x N float64
    tracemalloc.start()
    compute_rdm(x, "euclidean")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    nn = n * n * 8
    print(f"ours peak numpy memory: {peak / 2**20:.0f} MiB = {peak / nn:.2f} x (N^2 float64) "
          f"[N^2 float64 = {nn / 2**20:.0f} MiB, N x block float64 = {n * min(m, 4096) * 8 / 2**20:.0f} MiB]")
    rows.append(dict(what="compute_rdm peak memory (tracemalloc)", ours=f"{peak / 2**20:.0f} MiB",
                     reference=f"N^2*8 = {nn / 2**20:.0f} MiB", ratio=f"{peak / nn:.2f} x N^2*8", target="O(N^2 + N*block)"))

    if not args.no_h5:
        import h5py

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "act.h5"
            with h5py.File(path, "w") as f:
                f.create_dataset("activations", data=x, chunks=(min(n, 128), min(m, 8192)))
            with h5py.File(path, "r") as f:
                dset = f["activations"]
                t_h5, (rdm_h5, n_near) = timeit(lambda: rdm_from_h5(dset, "euclidean"), max(1, args.repeats - 1))
            err_h5 = rel_err(rdm_h5)
            same = bool(np.array_equal(rdm_h5, ours))
            print(f"ours rdm_from_h5: {fmt_s(t_h5)} ({t_h5 / t_gemm:.2f}x GEMM); {n_near} near-duplicate pairs "
                  f"recomputed; identical to compute_rdm: {same}")
            rows.append(dict(what="rdm_from_h5 (incl. HDF5 reads) vs GEMM", ours=fmt_s(t_h5), reference=fmt_s(t_gemm),
                             ratio=f"ours/ref {t_h5 / t_gemm:.2f}", target="(info)", met=met(same and err_h5 <= EXACT)))
            del rdm_h5

    # pdist on s rows vs ours on the same rows
    t_ours_s, ours_s = timeit(lambda: compute_rdm(x[:s], "euclidean"), args.repeats)
    same_s = float(np.abs(ours_s - ours[:s, :s]).max())
    print(f"pdist float64 on {s} rows: {fmt_s(t_pdist)}; ours on the same rows: {fmt_s(t_ours_s)} "
          f"(max |diff| to the full-N RDM's block: {same_s:.1e})")
    rows.append(dict(what=f"compute_rdm vs scipy pdist (first {s} rows)", ours=fmt_s(t_ours_s), reference=fmt_s(t_pdist),
                     ratio=f"ref/ours {t_pdist / t_ours_s:.1f}", target="(info)", met=met(rel_err(ours_s) <= EXACT)))
    del ours_s

    if rsatoolbox is not None:
        ds = rsatoolbox.data.Dataset(x)

        def rt():
            return rsatoolbox.rdm.calc_rdm(ds, method="euclidean")

        t_rt, rdms = timeit(rt, args.repeats)
        rt_sq = rdms.get_matrices()[0]  # squared distance / M
        del rdms
        err_rt = float(np.abs(np.sqrt(np.maximum(rt_sq[:s, :s], 0)) - ref).max() / scale)
        err_rt_sq = float(np.abs(rt_sq - ours.astype(np.float64) ** 2).max() / scale**2)
        print(f"rsatoolbox calc_rdm('euclidean') [squared/M]: {fmt_s(t_rt)}; sqrt of it vs pdist: {err_rt:.1e} of max; "
              f"vs our squared RDM: {err_rt_sq:.1e} of max^2; d(0,1) of the duplicate rows = {rt_sq[0, 1]:.2e}")
        rows.append(dict(what="compute_rdm vs rsatoolbox calc_rdm", ours=fmt_s(t_ours), reference=fmt_s(t_rt),
                         ratio=f"ref/ours {t_rt / t_ours:.2f}", target="(info)", met=None))
        rows.append(dict(what="rsatoolbox exactness vs pdist (err / max dist)", ours=f"{err_ours:.1e}",
                         reference=f"{err_rt:.1e}", target="(info)"))
        del rt_sq
    else:
        rows.append(dict(what="compute_rdm vs rsatoolbox", met="skipped (rsatoolbox not installed)"))

    if torch is not None:
        t_tut, tut = timeit(lambda: tutorial_rdm(x), args.repeats)
        err_tut = rel_err(tut)
        print(f"tutorial float32 torch compute_rdm: {fmt_s(t_tut)}; error vs pdist {err_tut:.1e} of max; "
              f"d(0,1) of the duplicate rows = {tut[0, 1]:.2e}")
        rows.append(dict(what="compute_rdm vs tutorial float32 torch", ours=fmt_s(t_ours), reference=fmt_s(t_tut),
                         ratio=f"ref/ours {t_tut / t_ours:.2f}", target="(info)"))
        rows.append(dict(what="tutorial exactness vs pdist (err / max dist)", ours=f"{err_ours:.1e}",
                         reference=f"{err_tut:.1e}", target="(info)"))
        del tut

    print_table("Euclidean RDM", rows)
    if args.metrics:
        del ours
        angular(args, x, ref_rows=x64s)
    if args.quick:
        print("(--quick: sizes below the target; the ratio is a smoke check only)")
    return 0


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_case(spec: str) -> int:
    """Child process: rdm_from_h5 on one file and metric; prints 'base peak near' in bytes."""
    import h5py

    from rsaflow.rdm import compute_rdm, rdm_from_h5

    metric, path, block = spec.split(":")
    compute_rdm(np.random.default_rng(0).random((3, 4)), metric)  # loads the code (BLAS, hashlib) before the baseline
    with h5py.File(path, "r") as f:
        dset = f["activations"]
        base = _vm("VmRSS")
        _, n_near = rdm_from_h5(dset, metric, int(block))
        print(base, _vm("VmHWM"), n_near)
    return 0


def angular(args, x: np.ndarray, ref_rows: np.ndarray) -> None:
    """Correlation and cosine: time and error vs pdist on S rows; peak RSS of streaming the full file."""
    import subprocess

    import h5py
    from scipy.spatial.distance import pdist, squareform

    from rsaflow.rdm import compute_rdm

    n, m = x.shape
    s = ref_rows.shape[0]
    block = 4096
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "act.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("activations", data=x, chunks=(min(n, 128), min(m, 8192)))
        for metric in args.metrics.split(","):
            res = timeit_interleaved({"pdist": lambda: pdist(ref_rows, metric),
                                      "ours": lambda: compute_rdm(x[:s], metric)}, args.repeats)
            (t_pd, ref_v), (t_ours, ours) = res["pdist"], res["ours"]
            ref = squareform(ref_v)
            err = float(np.abs(ours - ref).max() / ref.max())
            exact = bool(ours[0, 1] == 0.0 and np.array_equal(ours, ours.T) and np.all(np.diag(ours) == 0))
            print(f"{metric}: ours compute_rdm on {s} rows {fmt_s(t_ours)}, pdist {fmt_s(t_pd)} "
                  f"(pdist/ours {t_pd / t_ours:.1f}); error vs pdist {err:.1e} of max; exact 0s and symmetric: {exact}; "
                  f"near-duplicate d(2,3) = {ours[2, 3]:.3e} (pdist {ref[2, 3]:.3e})")
            rows.append(dict(what=f"{metric}: compute_rdm vs pdist ({s} rows)", ours=fmt_s(t_ours),
                             reference=fmt_s(t_pd), ratio=f"ref/ours {t_pd / t_ours:.1f}", target="(info)"))
            rows.append(dict(what=f"{metric}: exactness vs float64 pdist", ours=f"{err:.1e}",
                             target=f"<= {EXACT:g}, symmetric, exact 0s", met=met(err <= EXACT and exact)))
            out = subprocess.run([sys.executable, __file__, "--rss-case", f"{metric}:{path}:{block}"], check=True,
                                 capture_output=True, text=True).stdout.split()
            base, peak, n_near = int(out[0]), int(out[1]), int(out[2])
            nn = n * n * 8
            bound = 1.5 * nn + 3 * n * min(block, m) * 8
            extra = peak - base
            print(f"{metric}: rdm_from_h5 (N={n}, M={m}) peak RSS {peak / 2**20:.0f} MiB, {extra / 2**20:.0f} MiB above "
                  f"the process before the call = {extra / nn:.2f} x N^2 x 8 B; bound {bound / 2**20:.0f} MiB; "
                  f"{n_near} near pairs recomputed; whole matrix as float64 would be {n * m * 8 / 2**20:.0f} MiB")
            rows.append(dict(what=f"{metric}: rdm_from_h5 peak RSS above start", ours=f"{extra / 2**20:.0f} MiB",
                             reference=f"N^2*8 = {nn / 2**20:.0f} MiB", ratio=f"{extra / nn:.2f} x N^2*8",
                             target="<= 1.5 N^2 8 + 3 N block 8", met=met(extra <= bound)))
    print_table("Correlation and cosine RDMs (streamed)", rows)


if __name__ == "__main__":
    sys.exit(main())
