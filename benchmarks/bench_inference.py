"""Bootstrap and permutation test in bounded memory: peak RSS and time, ours vs the earlier (K, N, N) code.

    python benchmarks/bench_inference.py            # K=50 RDMs of N=1,000 stimuli (P=499,500), a few minutes
    python benchmarks/bench_inference.py --quick    # K=10, N=200: seconds

Each case runs in a fresh subprocess that loads the K RDMs from a .npy file and reports its peak
resident memory (VmHWM from /proc/self/status) for the whole process, input included, and the
seconds per resample (the median of the per-resample times is not observable from outside, so
this is total time / resamples, after the input is loaded):

- ours: ``rsaflow.inference.bootstrap_second_order`` / ``permutation_test`` on the (K, P) float64
  upper triangles (K x P x 8 B = 200 MB at the target size), ``chunk_bytes`` at its default;
- reference: the previous implementation (``reference_bootstrap`` / ``reference_permutation`` in
  tests/test_inference.py), which takes (K, N, N) square RDMs (400 MB at the target size) and
  builds K x P vectors per resample; run with fewer resamples (--ref-resamples), same seed;
- baseline: the same process after loading the input and importing everything, with no work.

The first --ref-resamples resamples of ours and of the reference use the same seed, so their
results are compared (max |difference| over all returned arrays). tests/test_inference.py asserts
<= 1e-12 on small cases; at P = 499,500 the reference's own rounding reaches ~5e-12 for the rank
methods (see benchmarks/README.md), so here the difference is information only.
Target (issue 11): bootstrap and permutations at K=50, N=1,000 within 1 GB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's rsaflow, not an installed one
from _common import REPO, fmt_s, limit_threads, machine, met, print_table, versions

GB = 1e9


def vm_hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def make_rdms(k: int, n: int, seed: int = 0) -> np.ndarray:
    """K related Euclidean RDMs (upper triangles): shared latent stimuli in 8-D, growing noise."""
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, 8))
    out = np.empty((k, n * (n - 1) // 2))
    for a in range(k):
        out[a] = pdist(s + rng.normal(0, 0.2 + a / k, size=(n, 8)))
    return out


def run_case(args) -> None:
    """Child process: one case; prints one JSON line."""
    limit_threads(args.threads)
    sys.path.insert(0, str(REPO / "tests"))
    from rsaflow.inference import bootstrap_second_order, permutation_test

    uppers = np.load(args.input)
    impl, kind, method, resamples = args.case.split(":")
    resamples = int(resamples)
    if impl == "reference":
        from scipy.spatial.distance import squareform

        from test_inference import reference_bootstrap, reference_permutation

        rdms = np.stack([squareform(u) for u in uppers])
        del uppers
        data, boot, perm = rdms, reference_bootstrap, reference_permutation
    else:
        data, boot, perm = uppers, bootstrap_second_order, permutation_test
    base = vm_hwm()
    t0 = time.perf_counter()
    if impl == "baseline":
        result = ()
    elif kind == "bootstrap":
        result = boot(data, method, n_boot=resamples, seed=1)[:4]
    else:
        result = perm(data, method, n_perm=resamples, seed=1)
    seconds = time.perf_counter() - t0
    if args.save:
        np.savez(args.save, *result)
    print(json.dumps(dict(peak=vm_hwm(), base=base, seconds=seconds, resamples=resamples)))


def child(script: Path, case: str, inp: Path, threads: int, save: Path | None = None) -> dict:
    cmd = [sys.executable, str(script), "--case", case, "--input", str(inp), "--threads", str(threads)]
    if save is not None:
        cmd += ["--save", str(save)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def max_diff(a: Path, b: Path) -> float:
    with np.load(a) as x, np.load(b) as y:
        return max(float(np.nanmax(np.abs(x[key] - y[key]))) if x[key].size else 0.0 for key in x.files)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--resamples", type=int, default=20, help="bootstrap resamples and permutations of ours")
    p.add_argument("--ref-resamples", type=int, default=3, help="resamples of the reference (slow, large)")
    p.add_argument("--methods", default="spearman,pearson")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="K=10, N=200")
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--save", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case:
        run_case(args)
        return 0
    if args.quick:
        args.k, args.n = 10, 200
    k, n = args.k, args.n
    pairs = n * (n - 1) // 2
    print(f"machine: {machine()}; threads: {args.threads}")
    print(versions("numpy", "scipy"))
    print(f"\nK={k} RDMs of N={n} stimuli (P={pairs:,}); input (K, P) float64 = {k * pairs * 8 / 1e6:.0f} MB")
    script = Path(__file__).resolve()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inp = tmp / "uppers.npy"
        np.save(inp, make_rdms(k, n))
        base = child(script, "baseline:none:none:0", inp, args.threads)
        print(f"baseline (imports + input loaded): peak RSS {base['peak'] / 1e6:.0f} MB")
        for kind in ("bootstrap", "permutations"):
            for method in args.methods.split(","):
                r = args.ref_resamples
                ours_check = child(script, f"ours:{kind}:{method}:{r}", inp, args.threads, tmp / "ours.npz")
                ref = child(script, f"reference:{kind}:{method}:{r}", inp, args.threads, tmp / "ref.npz")
                diff = max_diff(tmp / "ours.npz", tmp / "ref.npz")
                ours = child(script, f"ours:{kind}:{method}:{args.resamples}", inp, args.threads)
                per_ours = ours["seconds"] / (args.resamples + (kind == "bootstrap"))  # + the estimate
                per_ref = ref["seconds"] / (r + (kind == "bootstrap"))
                peak = max(ours["peak"], ours_check["peak"])
                print(f"{kind} {method}: ours peak {peak / 1e6:.0f} MB, {fmt_s(per_ours)} per resample "
                      f"({args.resamples}); reference peak {ref['peak'] / 1e6:.0f} MB, {fmt_s(per_ref)} per resample "
                      f"({r}); max |ours - reference| = {diff:.1e}")
                rows.append(dict(what=f"{kind} {method}: peak RSS", ours=f"{peak / 1e6:.0f} MB",
                                 reference=f"{ref['peak'] / 1e6:.0f} MB", ratio=f"ours/ref {peak / ref['peak']:.2f}",
                                 target="<= 1 GB" if (k, n) == (50, 1000) else "(info)",
                                 met=met(peak <= GB) if (k, n) == (50, 1000) else None))
                rows.append(dict(what=f"{kind} {method}: s per resample", ours=fmt_s(per_ours),
                                 reference=fmt_s(per_ref), ratio=f"ours/ref {per_ours / per_ref:.2f}", target="(info)"))
                rows.append(dict(what=f"{kind} {method}: max |ours - reference|", ours=f"{diff:.1e}",
                                 target="(info; <= 1e-12 asserted in tests)", met=None))
    print_table(f"Inference, K={k}, N={n}", rows)
    if args.quick:
        print("(--quick: sizes below the target; the memory target applies at K=50, N=1000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
