"""Second order at scale: peak memory and time of the streaming, incremental second-order job.

    python benchmarks/bench_scale.py             # the issue's sizes (about 5-10 minutes on 2 cores, ~10 GB of /tmp)
    python benchmarks/bench_scale.py --quick     # smoke run, seconds

RDM files are generated directly with the workflow's writer (rsaflow.rdmfile.write: condensed
values + ranks, 2 S bytes each, S = 8 N (N - 1) / 2) from a shared latent geometry plus noise;
no network runs. Each measurement runs ``rsaflow.jobs.second_order.write_second_order`` (what the
rule runs) in a fresh subprocess and reads its peak RSS from /proc/self/status (VmHWM) at the end.
The reference in the same run is the in-memory approach (the job before streaming): every
vector stacked, K x S bytes, one matrix product; its memory is stated as the stacked size K x S,
and at the small case also measured. Cases:

- N=3000, K=41 Spearman: peak RSS vs the stacked vectors (1.5 GB); target <= 1 GB;
- N=1000, K=100 -> 101: cold second order of K=101 vs adding one RDM to a stored K=100 (target >= 20x);
- N=1000, K=1000 Spearman, cold: target <= 2 GB and <= 3 minutes on 2 cores; then one RDM added.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's rsaflow, first
from _common import REPO, limit_threads, machine, met, print_table, versions

GB = 1e9


def vm_hwm() -> int:
    """Peak resident set size of this process in bytes (/proc/self/status VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return -1


def make_files(folder: Path, n: int, k: int, seed: int = 0, start: int = 0) -> list[Path]:
    """K RDM files of N stimuli (one shared latent geometry plus independent noise; every 4th with ties)."""
    from scipy.spatial.distance import pdist

    from rsaflow import rdmfile

    rng = np.random.default_rng(seed)
    base = pdist(rng.standard_normal((n, 8)))
    paths = []
    for i in range(start, start + k):
        r = np.random.default_rng([seed, i])
        v = np.abs(base + r.uniform(0.2, 3.0) * r.standard_normal(base.size))
        if i % 4 == 3:
            v = np.round(v, 1)
        path = folder / f"rdm{i:04d}.h5"
        rdmfile.write(path, v, {"model": f"m{i:04d}", "layer": "l", "stimulus_digest": "bench", "node_index": i,
                                "content_key": f"bench-{n}-{seed}-{i}"})
        paths.append(path)
    return paths


def child(args) -> None:
    """Run one second order in this (fresh) process; print seconds and peak RSS as JSON."""
    limit_threads(args.threads)
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    from rsaflow.jobs.second_order import write_second_order

    paths = json.loads(Path(args.paths).read_text())
    out = Path(args.out)
    t0 = time.perf_counter()
    if args.stacked:  # the reference: every vector in memory, one product
        from rsaflow import rdmfile
        from rsaflow.compare import aggregate

        import h5py

        vecs = []
        for p in paths:
            with h5py.File(p) as f:
                vecs.append(rdmfile.vector_chunk(f, args.method))
        aggregate(np.stack(vecs), args.method)
    else:
        write_second_order(paths, out / "matrix.h5", out / "matrix.tsv",
                           {"method": args.method, "chunk_mb": args.chunk_mb}, "bench-code",
                           out_pairs=out / "pairs.h5", store_root=args.store)
    print(json.dumps({"seconds": time.perf_counter() - t0, "peak": vm_hwm()}))


def measure(paths, store, method="spearman", chunk_mb=256, threads=2, stacked=False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "paths.json"
        listing.write_text(json.dumps([str(p) for p in paths]))
        cmd = [sys.executable, __file__, "--child", "--paths", str(listing), "--out", tmp, "--store", str(store),
               "--method", method, "--chunk-mb", str(chunk_mb), "--threads", str(threads)]
        if stacked:
            cmd.append("--stacked")
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-3000:])
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        res["log"] = [line for line in proc.stderr.splitlines() if "pairs:" in line]
        return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunk-mb", type=float, default=256)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--stacked", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--paths", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--method", default="spearman", help=argparse.SUPPRESS)
    ap.add_argument("--cases", default="a,b,c", help="a: N=3000 K=41; b: K=100 +1; c: K=1000 (8 GB of files)")
    args = ap.parse_args()
    if args.child:
        child(args)
        return 0
    print(f"machine: {machine()}; threads: {args.threads}; chunk_mb: {args.chunk_mb}")
    print(versions("numpy", "scipy", "h5py"))
    n1, k1 = (300, 11) if args.quick else (3000, 41)
    n2, k2 = (200, 20) if args.quick else (1000, 100)
    n3, k3 = (200, 60) if args.quick else (1000, 1000)
    rows = []
    root = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    try:
        cases = args.cases.split(",")
        # --- N=3000, K=41 ----------------------------------------------------------------------
        if "a" in cases:
            d = root / "a"
            d.mkdir()
            t0 = time.perf_counter()
            paths = make_files(d, n1, k1)
            s = 8 * n1 * (n1 - 1) // 2
            sizes = [p.stat().st_size for p in paths]
            print(f"\nN={n1}, K={k1}: wrote {k1} RDM files in {time.perf_counter() - t0:.1f} s; "
                  f"largest file {max(sizes) / s:.4f} S (S = {s / 1e6:.1f} MB)")
            res = measure(paths, root / "store_a", chunk_mb=args.chunk_mb, threads=args.threads)
            ref = measure(paths, root / "unused", stacked=True, threads=args.threads)
            print(f"streaming: {res['seconds']:.1f} s, peak {res['peak'] / GB:.3f} GB; stacked in memory: "
                  f"{ref['seconds']:.1f} s, peak {ref['peak'] / GB:.3f} GB (vectors alone {k1 * s / GB:.2f} GB)")
            rows.append(dict(what=f"N={n1} K={k1} spearman peak RSS", ours=f"{res['peak'] / GB:.2f} GB",
                             reference=f"{ref['peak'] / GB:.2f} GB stacked", ratio=f"{ref['peak'] / res['peak']:.1f}x",
                             target="<= 1 GB", met=met(res["peak"] <= 1 * GB)))
            rows.append(dict(what=f"N={n1} K={k1} spearman seconds", ours=f"{res['seconds']:.1f} s",
                             reference=f"{ref['seconds']:.1f} s stacked", ratio=f"{ref['seconds'] / res['seconds']:.2f}x"))
            rows.append(dict(what="RDM file size", ours=f"{max(sizes) / s:.4f} S", target="<= 2 S",
                             met=met(max(sizes) <= 2 * s + 16384)))
            shutil.rmtree(d)

        # --- N=1000, K=100 -> 101 --------------------------------------------------------------
        if "b" in cases:
            d = root / "b"
            d.mkdir()
            paths = make_files(d, n2, k2 + 1)
            store = root / "store_b"
            base = measure(paths[:k2], store, chunk_mb=args.chunk_mb, threads=args.threads)
            inc = measure(paths, store, chunk_mb=args.chunk_mb, threads=args.threads)
            cold = measure(paths, root / "store_b_cold", chunk_mb=args.chunk_mb, threads=args.threads)
            print(f"\nN={n2}: cold K={k2}: {base['seconds']:.2f} s; +1 incremental: {inc['seconds']:.2f} s "
                  f"({inc['log'][-1] if inc['log'] else ''}); cold K={k2 + 1}: {cold['seconds']:.2f} s, "
                  f"peak {cold['peak'] / GB:.3f} GB")
            rows.append(dict(what=f"N={n2} +1 RDM to K={k2} vs cold K={k2 + 1}", ours=f"{inc['seconds']:.2f} s",
                             reference=f"{cold['seconds']:.2f} s", ratio=f"{cold['seconds'] / inc['seconds']:.1f}x",
                             target=">= 20x", met=met(cold["seconds"] / inc["seconds"] >= 20)))
            shutil.rmtree(d)

        # --- N=1000, K=1000 --------------------------------------------------------------------
        if "c" in cases:
            d = root / "c"
            d.mkdir()
            t0 = time.perf_counter()
            paths = make_files(d, n3, k3 + 1)
            s3 = 8 * n3 * (n3 - 1) // 2
            print(f"\nN={n3}, K={k3}: wrote {k3 + 1} files ({k3 * 2 * s3 / GB:.1f} GB) in {time.perf_counter() - t0:.0f} s")
            res = measure(paths[:k3], root / "store_c", chunk_mb=args.chunk_mb, threads=args.threads)
            print(f"streaming: {res['seconds']:.1f} s, peak {res['peak'] / GB:.3f} GB "
                  f"(stacked vectors alone would be {k3 * s3 / GB:.1f} GB)")
            inc = measure(paths, root / "store_c", chunk_mb=args.chunk_mb, threads=args.threads)
            print(f"+1 incremental: {inc['seconds']:.1f} s, peak {inc['peak'] / GB:.3f} GB ({inc['log'][-1]})")
            rows.append(dict(what=f"N={n3} +1 RDM to K={k3} vs cold K={k3}", ours=f"{inc['seconds']:.1f} s",
                             reference=f"{res['seconds']:.1f} s", ratio=f"{res['seconds'] / inc['seconds']:.1f}x",
                             target=">= 20x", met=met(res["seconds"] / inc["seconds"] >= 20)))
            rows.append(dict(what=f"N={n3} K={k3} spearman peak RSS", ours=f"{res['peak'] / GB:.2f} GB",
                             reference=f"{k3 * s3 / GB:.1f} GB stacked (size)",
                             ratio=f"{k3 * s3 / res['peak']:.1f}x", target="<= 2 GB", met=met(res["peak"] <= 2 * GB)))
            rows.append(dict(what=f"N={n3} K={k3} spearman seconds", ours=f"{res['seconds']:.0f} s",
                             target="<= 180 s", met=met(res["seconds"] <= 180)))
            shutil.rmtree(d)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_table("second order at scale", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
