"""BLAS under contention: the cold second-order job, two at once against one alone.

    python benchmarks/bench_contention.py            # K=101 RDM files, N=1,000 (about 2 minutes on 2 cores)
    python benchmarks/bench_contention.py --quick    # K=11, N=200, a few seconds

K RDM files are written once with the workflow's writer (bench_scale.make_files). Each run is the
second-order job as the rule runs it: a fresh process that sets its thread limits with
``rsaflow.jobs.common.setup(None, threads)`` (what every script does with ``snakemake.threads``)
and calls ``rsaflow.jobs.second_order.write_second_order`` with a store of its own (cold: nothing
to reuse). "alone": one such process; "two at once": two started together (as ``--cores 4`` on a
2-core node, or a cluster node shared with another job would run them), each timed by itself.
Medians over --repeats (alone and pair alternate). The child also reports the BLAS threads it ran
with (threadpoolctl), which must equal the threads it was given.
Target: each of two at once <= 1.5 x one alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's rsaflow, first
from _common import REPO, machine, met, print_table, versions


def child(args) -> int:
    """One cold second-order job in this process; prints seconds and BLAS threads as JSON."""
    from rsaflow.jobs.common import setup

    setup(None, args.threads)
    from threadpoolctl import threadpool_info

    from rsaflow.jobs.second_order import write_second_order

    paths = json.loads(Path(args.paths).read_text())
    out = Path(args.out)
    t0 = time.perf_counter()
    write_second_order(paths, out / "matrix.h5", out / "matrix.tsv", {"method": args.method, "chunk_mb": 256},
                       "bench-code", out_pairs=out / "pairs.h5", store_root=str(out / "store"))
    seconds = time.perf_counter() - t0
    blas = sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"})
    print(json.dumps({"seconds": seconds, "blas_threads": blas}))
    return 0


def start(listing: Path, work: Path, threads: int, method: str) -> subprocess.Popen:
    work.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, __file__, "--child", "--paths", str(listing), "--out", str(work), "--threads", str(threads),
           "--method", method]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(err[-3000:])
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--k", type=int, default=101, help="RDM files (target: 101)")
    p.add_argument("--n", type=int, default=1000, help="stimuli (target: 1000)")
    p.add_argument("--threads", type=int, default=2, help="threads each job is given (the rule declares 2)")
    p.add_argument("--method", default="spearman")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="smoke run: K=11, N=200, 1 repeat")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--paths", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    if args.quick:
        args.k, args.n, args.repeats = 11, 200, 1
    from bench_scale import make_files

    print(f"machine: {machine()}")
    print(versions("numpy", "threadpoolctl"))
    alone, pair, threads = [], [], set()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "rdms").mkdir()
        t0 = time.perf_counter()
        paths = make_files(root / "rdms", args.n, args.k)
        listing = root / "paths.json"
        listing.write_text(json.dumps([str(x) for x in paths]))
        print(f"{args.k} RDM files of N={args.n} written in {time.perf_counter() - t0:.1f} s")
        for r in range(args.repeats):
            res = finish(start(listing, root / f"alone{r}", args.threads, args.method))
            alone.append(res["seconds"])
            threads.update(res["blas_threads"])
            procs = [start(listing, root / f"pair{r}_{i}", args.threads, args.method) for i in range(2)]
            for res in [finish(q) for q in procs]:
                pair.append(res["seconds"])
                threads.update(res["blas_threads"])
            print(f"round {r + 1}: alone {alone[-1]:.2f} s; two at once {pair[-2]:.2f} s, {pair[-1]:.2f} s", flush=True)
    t_alone = statistics.median(alone)
    t_pair = max(statistics.median(pair[0::2]), statistics.median(pair[1::2]))
    ratio = t_pair / t_alone
    rows = [dict(what=f"cold second order K={args.k}, N={args.n}, {args.threads} threads: two at once vs alone",
                 ours=f"{t_pair:.2f} s", reference=f"{t_alone:.2f} s", ratio=f"{ratio:.2f}x", target="<= 1.5x",
                 met=met(ratio <= 1.5)),
            dict(what="BLAS threads the jobs ran with (threadpoolctl)", ours=",".join(map(str, sorted(threads))),
                 reference=str(args.threads), target="= given", met=met(threads == {args.threads}))]
    print_table(f"contention (medians of {args.repeats}; two at once: the slower job's median)", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
