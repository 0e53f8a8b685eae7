"""Brain responses: crossnobis RDMs and model evaluation (issue 20), against rsatoolbox in the same run.

Cases (2 BLAS threads):

- a: crossnobis, 6 runs x 200 stimuli x 5,000 channels, shrinkage_diag noise from 200 x 5,000 residuals:
  rsaflow (rsaflow.responses.noise.precision + rdms.response_rdm) vs rsatoolbox
  (data.noise.prec_from_residuals + rdm.calc_rdm with cv_descriptor=run), one run each (rsatoolbox takes
  minutes); the two RDMs' largest difference. Target: >= 3x faster, same values (1e-10).
- b: crossnobis, 6 x 1,000 x 20,000 with diag noise, the responses a memory-mapped .npy on disk, in a
  fresh child: its peak RSS (VmHWM, /proc) against the data's 960 MB. Target: <= 2x the data.
- c: evaluation (rsaflow.evaluation) of 100 layers x 10 subjects x 500 stimuli, pearson, 1,000 dual
  bootstrap samples (subjects and stimuli, three sample sets), variances and tests. Target: < 2 minutes.
  Then 100 samples by the code of REFERENCE_COMMIT (git show) and by this code, in the same run: their
  ratio and largest difference; and the load average and a fixed workload's time, to compare runs.
- d: the same evaluation with spearman, 6 dual samples, this code and REFERENCE_COMMIT's in the same run.

Usage: PYTHONPATH=src python benchmarks/bench_responses.py [--quick] [a b c d]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import limit_threads, machine, print_grid, rsatoolbox_or_none, versions

HERE = Path(__file__).resolve()


#: Sizes of the cases: the issue's targets, and --quick (seconds: checks that the script runs).
SIZES = {"full": {"a": (6, 200, 5000, 200), "b": (6, 1000, 20000), "c": (500, 100, 10, 1000, 100),
                  "d": (500, 100, 10, 6)},
         "quick": {"a": (3, 30, 300, 50), "b": (3, 100, 2000), "c": (60, 8, 4, 20, 20), "d": (60, 8, 4, 3)}}
SIZE = SIZES["full"]


def case_a() -> list[str]:
    from rsaflow.responses.noise import precision
    from rsaflow.responses.rdms import response_rdm

    rng = np.random.default_rng(0)
    r, n, c, t = SIZE["a"]
    x = rng.normal(size=(n, c))[None] + rng.normal(size=(r, n, c))
    res = rng.normal(size=(t, c))
    t0 = time.perf_counter()
    ours = response_rdm(x, "crossnobis", precision("shrinkage_diag", res))
    t_ours = time.perf_counter() - t0
    rsa = rsatoolbox_or_none()
    if rsa is None:
        return ["a", f"{t_ours:.1f} s", "-", "-", "-"]
    import rsatoolbox.data.noise

    t0 = time.perf_counter()
    prec = rsatoolbox.data.noise.prec_from_residuals(res, method="shrinkage_diag")
    ds = rsa.data.Dataset(x.reshape(r * n, c), obs_descriptors={"stimulus": np.tile(np.arange(n), r),
                                                                "run": np.repeat(np.arange(r), n)})
    ref = rsa.rdm.calc_rdm(ds, method="crossnobis", descriptor="stimulus", noise=prec, cv_descriptor="run")
    t_ref = time.perf_counter() - t0
    diff = float(np.abs(ref.get_vectors()[0] - ours).max())
    return ["a", f"{t_ours:.1f} s", f"{t_ref:.1f} s", f"{t_ref / t_ours:.1f}x", f"{diff:.1e}"]


def child_b(path: str) -> None:
    from rsaflow.responses.noise import precision
    from rsaflow.responses.rdms import response_rdm

    x = np.load(path, mmap_mode="r")
    res = np.random.default_rng(1).normal(size=(200, x.shape[2]))
    t0 = time.perf_counter()
    rdm = response_rdm(x, "crossnobis", precision("diag", res))
    took = time.perf_counter() - t0
    hwm = next(int(line.split()[1]) * 1024 for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM:"))
    print(f"{hwm} {took} {rdm.size}")


def case_b() -> list[str]:
    r, n, c = SIZE["b"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.npy"
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(r, n, c))
        rng = np.random.default_rng(0)
        for lo in range(0, c, 2000):
            out[:, :, lo : lo + 2000] = rng.normal(size=(r, n, min(2000, c - lo)))
        out.flush()
        del out
        proc = subprocess.run([sys.executable, str(HERE), "child-b", str(path)], capture_output=True, text=True,
                              check=True)
    hwm, took, _ = proc.stdout.split()
    data = r * n * c * 8
    return ["b", f"{float(took):.1f} s", f"peak {int(hwm) / 1e6:.0f} MB", f"{int(hwm) / data:.2f}x data",
            f"data {data / 1e6:.0f} MB"]


#: The code case c compares with (rsaflow.evaluation before the batched moments path), loaded with git.
REFERENCE_COMMIT = "f493168"


def _reference_evaluation():
    """rsaflow.evaluation as of REFERENCE_COMMIT (git show), or None when git or the commit is missing."""
    import types

    try:
        src = subprocess.run(["git", "show", f"{REFERENCE_COMMIT}:src/rsaflow/evaluation.py"], cwd=HERE.parents[1],
                             capture_output=True, text=True, check=True).stdout
        module = types.ModuleType("evaluation_reference")
        exec(compile(src, f"evaluation@{REFERENCE_COMMIT}", "exec"), module.__dict__)
        return module
    except Exception as exc:  # noqa: BLE001 - a missing reference only drops its row
        print(f"note: no reference evaluation ({exc})")
        return None


def _fixed_work() -> float:
    """Median seconds of a fixed numpy workload (a 2,000^2 product and ten 100 x 124,750 x 12 products), to
    compare this run's load with another's: 0.49 s on the 2-core machine at load 0.6 (23:25 UTC, 2026-12-01)."""
    rng = np.random.default_rng(0)
    a, x, w = rng.normal(size=(2000, 2000)), rng.normal(size=(100, 124750)), rng.normal(size=(124750, 12))
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        a @ a
        for _ in range(10):
            x @ w
        times.append(time.perf_counter() - t0)
    return sorted(times)[1]


def case_c() -> list[list[str]]:
    import os

    from scipy.spatial.distance import pdist

    from rsaflow import evaluation as ev

    rng = np.random.default_rng(0)
    n, k, s, samples, ref_samples = SIZE["c"]
    true = pdist(rng.normal(size=(n, 8)))
    layers = true + rng.normal(size=(k, true.size)) * true.std() * np.linspace(0.2, 3, k)[:, None]
    subjects = true + rng.normal(size=(s, true.size)) * true.std()
    load = os.getloadavg()[0]
    fixed = _fixed_work()
    t0 = time.perf_counter()
    evals, ceiling = ev.evaluate_fixed(layers, subjects, "pearson")
    boot = ev.bootstrap(layers, subjects, "pearson", "both", samples, seed=0)
    var = ev.variances(evals, boot, "both", n)
    ev.tests(evals.mean(axis=1), ceiling[0], var, "t-test")
    took = time.perf_counter() - t0
    rows = [["c", f"{took:.1f} s", f"{samples} dual samples", f"target < 120 s: {'met' if took < 120 else 'NOT met'}",
             f"load {load:.1f}, fixed work {fixed:.2f} s"]]
    old = _reference_evaluation()
    if old is not None:
        t0 = time.perf_counter()
        ref = old.bootstrap(layers, subjects, "pearson", "both", ref_samples, seed=0)
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        mine = ev.bootstrap(layers, subjects, "pearson", "both", ref_samples, seed=0)
        t_new = time.perf_counter() - t0
        diff = max(float(np.nanmax(np.abs(ref[key] - mine[key]))) for key in ref)
        same_nan = all(np.array_equal(np.isnan(ref[key]), np.isnan(boot[key][:ref_samples])) for key in ref)
        rows.append([f"c, {ref_samples} samples", f"{t_new:.1f} s", f"{REFERENCE_COMMIT}: {t_ref:.1f} s",
                     f"{t_ref / t_new:.1f}x", f"max diff {diff:.1e}, skipped alike: {same_nan}"])
    return rows


def case_d() -> list[str]:
    """spearman: a few dual samples by this code and by REFERENCE_COMMIT's, in the same run."""
    from scipy.spatial.distance import pdist

    from rsaflow import evaluation as ev

    rng = np.random.default_rng(0)
    n, k, s, samples = SIZE["d"]
    true = pdist(rng.normal(size=(n, 8)))
    layers = true + rng.normal(size=(k, true.size)) * true.std() * np.linspace(0.2, 3, k)[:, None]
    subjects = true + rng.normal(size=(s, true.size)) * true.std()
    t0 = time.perf_counter()
    mine = ev.bootstrap(layers, subjects, "spearman", "both", samples, seed=0)
    took = time.perf_counter() - t0
    old = _reference_evaluation()
    if old is None:
        return ["d", f"{took:.1f} s", "-", "-", f"spearman, {samples} dual samples"]
    t0 = time.perf_counter()
    ref = old.bootstrap(layers, subjects, "spearman", "both", samples, seed=0)
    t_ref = time.perf_counter() - t0
    diff = max(float(np.nanmax(np.abs(ref[key] - mine[key]))) for key in ref)
    return ["d", f"{took:.1f} s", f"{REFERENCE_COMMIT}: {t_ref:.1f} s", f"{t_ref / took:.1f}x",
            f"spearman, {samples} dual samples, max diff {diff:.1e}"]


def main(argv: list[str]) -> None:
    if argv[:1] == ["child-b"]:
        limit_threads(2)
        child_b(argv[1])
        return
    if "--help" in argv or "-h" in argv:
        print(__doc__)
        return
    limit_threads(2)
    global SIZE
    if "--quick" in argv:
        SIZE = SIZES["quick"]
        argv = [a for a in argv if a != "--quick"]
    cases = argv or ["a", "b", "c", "d"]
    rows = []
    for name in cases:
        got = {"a": case_a, "b": case_b, "c": case_c, "d": case_d}[name]()
        for row in got if isinstance(got[0], list) else [got]:
            rows.append(row)
            print("  ".join(row), flush=True)
    print(machine(), versions("numpy", "scipy", "rsatoolbox"))
    print_grid("bench_responses", ["case", "rsaflow", "reference / peak", "ratio", "note"], rows)


if __name__ == "__main__":
    main(sys.argv[1:])
