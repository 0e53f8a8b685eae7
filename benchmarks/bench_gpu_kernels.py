"""The numeric kernels' torch backend (rdm.backend / second_order.backend: torch) against NumPy.

Per kernel, the NumPy path (the reference, BLAS on the CPU) against torch on the CPU and, where
torch sees a CUDA GPU, torch on CUDA (host-device copies included: the times are what a job
sees): the RDM's Gram and distances (rsaflow.rdm.compute_rdm, euclidean and correlation, N x M
float32 patterns), the average ranks of a condensed RDM (P = N (N - 1) / 2; continuous values and
heavy ties: bit-identical to the NumPy ranks is checked, not assumed; torch.sort on the CPU too,
though a CPU job ranks with NumPy, rsaflow.kernels), the RDM job itself (rsaflow.jobs.rdm.write_rdm
on an activation file: read, Gram, triangle, ranks, write) and the
second order's K x K product of K unit vectors of P pairs (rsaflow.products.gram). Prints medians,
ratios NumPy / torch, the largest difference to the NumPy result, and the CUDA peak memory.

Without CUDA the CUDA rows are listed as what the script would compare, so the script can be
prepared on a CPU machine and run unchanged on a GPU one:

    python benchmarks/bench_gpu_kernels.py [--n 10000] [--m 512] [--k 100] [--pairs-n 1000] [--threads 2]
    python benchmarks/bench_gpu_kernels.py --quick      # N = 600, K = 12: seconds, CPU rows only
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _common import limit_threads, machine, print_grid, timeit, versions


def _devices():
    import torch

    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    return out


def _peak(device: str):
    import torch

    if device != "cuda":
        return "-"
    return f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"


def _reset_peak(device: str):
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _diff(got, want, exact: bool) -> str:
    if exact:
        return "bit-identical" if np.array_equal(got, want) else "DIFFERENT"
    scale = float(np.abs(want).max()) or 1.0
    return f"{float(np.abs(got - want).max()) / scale:.1e} of max"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="stimuli of the RDM rows")
    parser.add_argument("--m", type=int, default=512, help="units of the RDM rows")
    parser.add_argument("--k", type=int, default=100, help="RDMs of the second-order product")
    parser.add_argument("--pairs-n", type=int, default=1000, help="stimuli of the second order's RDMs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="BLAS / torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="N = 600, M = 64, K = 12 of N = 200, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.n, args.m, args.k, args.pairs_n, args.repeats = 600, 64, 12, 200, 1
    limit_threads(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    from rsaflow import compare, h5io, kernels, products, rdm, torch_kernels
    from rsaflow.jobs.rdm import write_rdm

    print(machine())
    print(versions("numpy", "scipy", "torch"))
    devices = _devices()
    cuda = "cuda" in devices
    print(f"torch devices: {', '.join(devices)}" + ("" if cuda else " (no CUDA GPU visible: CUDA rows not run)"))
    kern = {d: kernels.select({"backend": "torch", "device": d}, "rdm") for d in devices}

    rng = np.random.default_rng(0)
    n, m, k, pn = args.n, args.m, args.k, args.pairs_n
    x = rng.standard_normal((n, m)).astype(np.float32)
    p = n * (n - 1) // 2
    rows, pending = [], []

    def compare_row(what, numpy_fn, torch_fn, exact):
        t_np, want = timeit(numpy_fn, args.repeats)
        for d in devices:
            _reset_peak(d)
            t, got = timeit(lambda: torch_fn(d), args.repeats)
            rows.append([what, f"torch {d}", f"{t_np:.3f} s", f"{t:.3f} s", f"{t_np / max(t, 1e-9):.2f}x",
                         _diff(got, want, exact), _peak(d)])
        if not cuda:
            pending.append(what)
        del want

    # 1. Gram and distances of the RDM job (in memory: no file reads in the times)
    for metric in ("euclidean", "correlation"):
        compare_row(f"RDM {metric} N={n} M={m}", lambda: rdm.compute_rdm(x, metric, block=8192),
                    lambda d: rdm.compute_rdm(x, metric, block=8192, kernels=kern[d]), exact=False)

    # 2. Ranks of a condensed RDM, continuous and with heavy ties (bit for bit)
    cont = rng.random(p)
    ties = np.round(rng.random(p), 3)
    for label, v in (("continuous", cont), ("1,001 distinct values", ties)):
        compare_row(f"ranks P={v.size:,} {label}", lambda: compare.ranks_and_ties(v)[0],
                    lambda d: torch_kernels.ranks_and_ties(v, torch.device(d))[0], exact=True)
    del cont, ties

    # 3. The RDM job on a file: read, Gram, triangle, ranks, write (fresh store per call: computed each time)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        act = tmp / "act.h5"
        h5io.write_h5(act, "activations", {"activations": x}, {"model": "net", "layer": "l", "stimulus_digest": "b"})
        spec = {"metric": "euclidean", "block": 8192}
        count = iter(range(10**6))

        def job(extra):
            from rsaflow import store

            i = next(count)
            store.STORE_DIR = tmp / f"store{i}"
            out = tmp / f"r{i}.h5"
            write_rdm(act, out, {**spec, **extra}, "bench")
            with h5io.open_artifact(out, "rdm") as f:
                ranks = f["ranks"][()]
            out.unlink()
            return ranks

        compare_row(f"RDM job (write_rdm) N={n} M={m}, ranks", lambda: job({}),
                    lambda d: job({"backend": "torch", "device": d}), exact=True)

    # 4. The second order's K x K product of K vectors of P pairs
    pp = pn * (pn - 1) // 2
    v = rng.standard_normal((k, pp))
    v /= np.linalg.norm(v, axis=1, keepdims=True)

    def so(d):
        with kernels.using(kernels.select({"backend": "torch", "device": d}, "second_order")):
            return products.gram(v)

    compare_row(f"second-order gram K={k} P={pp:,}", lambda: products.gram(v), so, exact=False)

    print_grid(f"torch kernels vs NumPy ({args.threads} CPU threads, medians of {args.repeats}; "
               "ratio = NumPy time / torch time)",
               ["kernel", "backend", "numpy", "torch", "ratio", "vs numpy", "cuda peak"], rows)
    if pending:
        print("\nOn a machine where torch sees CUDA, the same run adds a 'torch cuda' row to each of:")
        for what in dict.fromkeys(pending):
            print(f"  - {what}: NumPy on the CPU vs torch on CUDA (copies included), difference, CUDA peak memory")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
