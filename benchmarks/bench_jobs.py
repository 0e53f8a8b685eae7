"""Per-job overhead (issue 22 item 5): adding external RDM files to a finished run, up to the matrix.

A finished run (one small untrained network, one layer, N generated CIFAR10-format images,
the main analysis: 1 - Spearman) gets ``--files`` external RDM files (N x N .npy, ``order:
stimuli``, each a fresh random geometry so that none is in the store); timed: ``snakemake`` up to
``results/second_order/main/matrix.tsv`` (Snakemake's start-up, the DAG, the external RDM job(s)
and the second order). Before each repeat the config goes back to the finished run without them
(untimed), and every repeat's files are new (other seeds), so each timed run computes them all.

Reference, in the same run, interleaved: a fresh Python process that imports rsatoolbox, loads the
same files with ``np.load`` and the layer's RDM (rsaflow.results.read_rdm), builds one
``rsatoolbox.rdm.RDMs`` and runs ``rsatoolbox.rdm.compare(rdms, rdms, method='spearman')``: what
rsatoolbox needs to load and compare them. Floor: ``snakemake -n`` of the same change (start-up,
config checks, DAG; no job), and a fresh process that only imports what the external RDM job
imports (``python -c 'import rsaflow.jobs.external_rdm'``). The dry run fills the workflow's digest
cache with the new files' sha256s (rsaflow.filedigest); their entries are dropped before the timed
run, so that it hashes them as a run with no dry run before it does. Memory: the peak RSS of the largest
process in each timed tree (``os.wait4``; for the workflow, Snakemake itself or one of its jobs).

    python benchmarks/bench_jobs.py [--n 800] [--files 80] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from _common import REPO, machine, met, print_table, run_tree, versions, write_cifar10

REFERENCE = r"""
import sys, numpy as np
import rsatoolbox.rdm
from rsaflow.results import read_rdm
files = sys.argv[2:]
layer = read_rdm(sys.argv[1])["condensed"]
mats = [np.load(f) for f in files]
rows = [layer] + [m[np.triu_indices(len(m), 1)] for m in mats]
rdms = rsatoolbox.rdm.RDMs(np.stack(rows))
print(rsatoolbox.rdm.compare(rdms, rdms, method="spearman").shape)
"""


def write_cifar(root: Path, n: int) -> Path:
    return write_cifar10(root, n // 10)


def external_files(folder: Path, n: int, k: int, seed: int) -> list[Path]:
    """k random Euclidean RDMs of N points (a shared geometry plus noise), as N x N float64 .npy."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 8))
    out = []
    for i in range(k):
        x = base + rng.normal(scale=1.0, size=base.shape)
        sq = (x * x).sum(1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0))
        np.fill_diagonal(d, 0)
        d = (d + d.T) / 2
        path = folder / f"r{i:03d}.npy"
        np.save(path, d)
        out.append(path)
    return out


def forget_digests(work: Path, files: list[Path]) -> None:
    """Drop ``files`` from the workflow's digest cache (rsaflow.filedigest), which the dry run filled."""
    from rsaflow import filedigest

    path = work / filedigest.CACHE_DIR / filedigest.CACHE_FILE
    cache = filedigest.load_cache(path)
    drop = {os.path.abspath(f) for f in files}  # its keys (rsaflow.filedigest.file_digests)
    filedigest.save_cache(path, {k: v for k, v in cache.items() if k not in drop})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=800)
    ap.add_argument("--files", type=int, default=80)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="N=100, 8 files, one repeat")
    args = ap.parse_args()
    if args.quick:
        args.n, args.files, args.repeats = 100, 8, 1
    print(machine(), "|", versions("numpy", "snakemake", "rsatoolbox"))
    tmp = Path(tempfile.mkdtemp(prefix="bench_jobs_"))
    try:  # about 2.4 GB at the default sizes (the files, the runs' results and store)
        return measure(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(args, tmp: Path) -> int:
    work = tmp / "work"
    work.mkdir()
    base = {"stimuli": {"source": "cifar10", "root": str(write_cifar(tmp / "cifar", args.n)),
                        "per_class": args.n // 10, "seed": 42},
            "models": {"squeeze": {"arch": "squeezenet1_1", "weights": "none",
                                   "layers": {"features": {"node": "features.12", "reduce": "mean"}}}},
            "extraction": {"batch_size": 50, "device": "cpu", "threads": 2, "gpu": False}}
    cfg = work / "config.yaml"
    target = "results/second_order/main/matrix.tsv"
    sm = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work), "--configfile",
          str(cfg), "--cores", "2"]

    def run(*extra, check=True):
        proc = subprocess.run([*sm, *extra], capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        return proc

    cfg.write_text(yaml.safe_dump(base))
    run(target)  # the finished run (extraction included; not timed)
    layer = work / "results/rdms/euclidean/squeeze/features.h5"
    times = {"workflow": [], "rsatoolbox": [], "dry run": [], "import": []}
    peaks = {"workflow": [], "rsatoolbox": []}  # MiB, the largest process of each tree (os.wait4)
    jobs = None
    for rep in range(args.repeats):
        files = external_files(tmp / f"ext{rep}", args.n, args.files, seed=100 + rep)
        cfg.write_text(yaml.safe_dump(base))
        run(target)  # back to the finished run without them
        added = {**base, "external_rdms": {f"e{i:03d}": {"path": str(p), "order": "stimuli"}
                                           for i, p in enumerate(files)}}
        cfg.write_text(yaml.safe_dump(added))
        t0 = time.perf_counter()
        dry = run("-n", target)
        times["dry run"].append(time.perf_counter() - t0)
        forget_digests(work, files)  # the timed run hashes them, as when no dry run came first
        jobs = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", dry.stdout, re.M)}
        seconds, peak, _ = run_tree([*sm, target])
        times["workflow"].append(seconds)
        peaks["workflow"].append(peak)
        seconds, peak, _ = run_tree([sys.executable, "-c", REFERENCE, str(layer), *map(str, files)],
                                    env={"PYTHONPATH": str(REPO / "src"), "PATH": ""})
        times["rsatoolbox"].append(seconds)
        peaks["rsatoolbox"].append(peak)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import rsaflow.jobs.external_rdm"], check=True,
                       env={"PYTHONPATH": str(REPO / "src"), "PATH": ""})
        times["import"].append(time.perf_counter() - t0)
    print({k: [round(x, 2) for x in v] for k, v in times.items()})
    print("peak RSS (MiB):", {k: [round(x) for x in v] for k, v in peaks.items()})
    print("jobs planned for the change:", jobs)
    med = {k: statistics.median(v) for k, v in times.items()}
    ours, ref = med["workflow"], med["rsatoolbox"]
    rows = [dict(what=f"add {args.files} external RDM files (N={args.n}) to a finished run, up to the matrix "
                      f"(jobs: {', '.join(f'{k} {v}' for k, v in (jobs or {}).items() if k != 'total')})",
                 ours=f"{ours:.2f} s", reference=f"{ref:.2f} s (rsatoolbox load + compare)",
                 ratio=f"{ref / ours:.2f}x faster", target=">= 2x", met=met(ref / ours >= 2)),
            dict(what="peak RSS of the largest process (workflow: Snakemake or a job; os.wait4)",
                 ours=f"{statistics.median(peaks['workflow']):.0f} MiB",
                 reference=f"{statistics.median(peaks['rsatoolbox']):.0f} MiB",
                 ratio=f"{statistics.median(peaks['workflow']) / statistics.median(peaks['rsatoolbox']):.2f}x",
                 target="-", met="-"),
            dict(what="floor: snakemake -n of the same change (start-up, config checks, DAG)",
                 ours=f"{med['dry run']:.2f} s", reference=f"{ref:.2f} s", ratio=f"{med['dry run'] / ours:.2f}x of ours",
                 target="-", met="-"),
            dict(what="floor: a fresh process importing rsaflow.jobs.external_rdm", ours=f"{med['import']:.2f} s",
                 reference=f"{ref:.2f} s", ratio=f"{med['import'] / ours:.2f}x of ours", target="-", met="-")]
    print_table("Per-job overhead: external RDM files added to a finished run", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
