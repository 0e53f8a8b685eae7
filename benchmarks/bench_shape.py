"""Shape and Bures second orders at N >= 1,000: what the workflow's jobs cost, against rsatoolbox.

    python benchmarks/bench_shape.py               # N=1,000, K=8 layers (about 1 minute on 2 cores; --n 2000: ~3)
    python benchmarks/bench_shape.py --quick       # N=200, K=3, seconds

K generated activation files (N x M float32, M cycling through 2048, 512, 4096, 1024: a rank-16
structure plus noise, post-ReLU), then, each step in a fresh child process (seconds and peak RSS,
VmHWM, of that process):
- the ``kernel`` rule's function (rsaflow.jobs.kernel.write_kernel) per layer, for ``shape`` with
  alpha 0.5 and alpha 1 (the artifacts ``bures`` shares);
- the ``second_order`` rule's function (rsaflow.jobs.second_order.write_second_order) over the K
  artifacts: ``shape`` (alpha 0.5) and ``bures``, K (K - 1) / 2 pairs, each one SVD;
- reference: rsatoolbox ``compare(method='bures')`` on each of the same K (K - 1) / 2 pairs of RDMs
  (squared Euclidean distances of the same activations: its K_c = -HDH/2 is our centred Gram), one
  call per pair, in one child; agreement = max |ours - rsatoolbox| over the pairs.
Ours is the per-layer artifacts plus the second order (the sum of the children); rsatoolbox has no
per-layer step, so it redoes each layer's eigendecomposition in every pair.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from _common import limit_threads, machine, print_grid, rsatoolbox_or_none, versions
from bench_scale import make_activations, run_child, vm_hwm

WIDTHS = (2048, 512, 4096, 1024)  # most layers reach rank N - 1, as wide conv layers do


def kernel_child(args) -> None:
    from rsaflow import store
    from rsaflow.jobs.kernel import write_kernel

    store.STORE_DIR = Path(args.store)
    t0 = time.perf_counter()
    write_kernel(args.act, args.out, {"kind": "shape", "alpha": args.alpha, "block": 8192}, "bench-code")
    print(json.dumps({"seconds": time.perf_counter() - t0, "peak": vm_hwm()}))


def second_order_child(args) -> None:
    from rsaflow.jobs.second_order import write_second_order
    from rsaflow.results import read_second_order

    paths = json.loads(args.paths)
    out = Path(args.out)
    spec = {"method": args.method, **({"alpha": args.alpha} if args.method == "shape" else {})}
    t0 = time.perf_counter()
    write_second_order(paths, out / "matrix.h5", out / "matrix.tsv", spec, "bench-code", store_root=args.store)
    seconds = time.perf_counter() - t0
    matrix = read_second_order(out / "matrix.h5")["matrix"]
    print(json.dumps({"seconds": seconds, "peak": vm_hwm(), "matrix": matrix.tolist()}))


def rsatoolbox_child(args) -> None:
    import rsatoolbox
    from scipy.spatial.distance import pdist

    uppers = []
    for p in json.loads(args.paths):
        with h5py.File(p) as f:
            uppers.append(pdist(f["activations"][()].astype(np.float64), "sqeuclidean"))
    k = len(uppers)
    sim = np.eye(k)
    t0 = time.perf_counter()
    for i in range(k):
        for j in range(i + 1, k):
            a, b = (rsatoolbox.rdm.RDMs(uppers[x][None, :], dissimilarity_measure="squared euclidean") for x in (i, j))
            sim[i, j] = sim[j, i] = rsatoolbox.rdm.compare(a, b, method="bures")[0, 0]
    print(json.dumps({"seconds": time.perf_counter() - t0, "peak": vm_hwm(), "matrix": (1 - sim).tolist()}))


def run(extra: list[str], threads: int) -> dict:
    return run_child(extra, threads, script=__file__)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="stimuli")
    ap.add_argument("--k", type=int, default=8, help="layers")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="N=200, K=3")
    ap.add_argument("--child", choices=["kernel", "second_order", "rsatoolbox"], help=argparse.SUPPRESS)
    for name in ("act", "out", "store", "paths", "method"):
        ap.add_argument(f"--{name}", help=argparse.SUPPRESS)
    ap.add_argument("--alpha", type=float, default=1.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        limit_threads(args.threads)
        {"kernel": kernel_child, "second_order": second_order_child, "rsatoolbox": rsatoolbox_child}[args.child](args)
        return 0
    if args.quick:
        args.n, args.k = 200, 3
    print(machine(), versions("numpy", "scipy", "h5py", "rsatoolbox"), sep="\n")
    print(f"N={args.n}, K={args.k}, threads={args.threads}")
    rsa = rsatoolbox_or_none()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        acts = []
        for i in range(args.k):
            acts.append(root / f"act{i}.h5")
            make_activations(acts[-1], args.n, WIDTHS[i % len(WIDTHS)], seed=i)
            with h5py.File(acts[-1], "r+") as f:  # one label per layer (the kernel artifact carries it)
                f.attrs.modify("model", f"m{i}")
        rows, results = [], {}
        for method, alpha in (("shape", 0.5), ("bures", 1.0)):
            kernels, layer_runs = [], []
            for i, act in enumerate(acts):
                kernels.append(root / f"{method}_{i}.h5")
                layer_runs.append(run(["--child", "kernel", "--act", str(act), "--out", str(kernels[-1]),
                                       "--store", str(root / f"store_{method}"), "--alpha", str(alpha)], args.threads))
            so = run(["--child", "second_order", "--paths", json.dumps([str(p) for p in kernels]), "--out", tmp,
                      "--store", str(root / f"store_{method}"), "--method", method, "--alpha", str(alpha)],
                     args.threads)
            results[method] = so
            pairs = args.k * (args.k - 1) // 2
            layer_s = [r["seconds"] for r in layer_runs]
            rows.append({"what": f"{method} (alpha {alpha}): kernel job per layer (median, max)",
                         "seconds": f"{np.median(layer_s):.2f} / {max(layer_s):.2f}",
                         "peak": f"{max(r['peak'] for r in layer_runs) / 2**20:.0f} MiB"})
            rows.append({"what": f"{method}: second order, {pairs} pairs",
                         "seconds": f"{so['seconds']:.2f} ({so['seconds'] / pairs:.2f} per pair)",
                         "peak": f"{so['peak'] / 2**20:.0f} MiB"})
            results[f"{method}_total"] = sum(layer_s) + so["seconds"]
        if rsa is not None:
            ref = run(["--child", "rsatoolbox", "--paths", json.dumps([str(p) for p in acts])], args.threads)
            pairs = args.k * (args.k - 1) // 2
            agree = np.max(np.abs(np.array(results["bures"]["matrix"]) - np.array(ref["matrix"])))
            rows.append({"what": f"rsatoolbox compare(method='bures'), {pairs} pairs",
                         "seconds": f"{ref['seconds']:.2f} ({ref['seconds'] / pairs:.2f} per pair)",
                         "peak": f"{ref['peak'] / 2**20:.0f} MiB"})
            rows.append({"what": "bures, ours in all (K kernel jobs + second order) vs rsatoolbox",
                         "seconds": f"{results['bures_total']:.2f} vs {ref['seconds']:.2f} = "
                                    f"{ref['seconds'] / results['bures_total']:.2f}x",
                         "peak": f"agreement {agree:.1e}"})
        cols = ["what", "seconds", "peak"]
        print_grid(f"shape and bures, N={args.n}, K={args.k}", cols, [[r[c] for c in cols] for r in rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
