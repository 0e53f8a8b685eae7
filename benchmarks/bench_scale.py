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
- N=1000, K=1000 Spearman, cold: target <= 2 GB and <= 3 minutes on 2 cores; then one RDM added;
- d, curves in N (``--n-sizes``, default 1000,2000,5000,10000), K=20 (``--k-curve``): the ``rdm`` job
  (``rsaflow.jobs.rdm.write_rdm``, euclidean, on a generated N x M float32 activation file, M
  ``--units``) and the second order of K RDM files at that N, each in a fresh child: seconds, peak
  RSS, the RDM file's size in S, and the growth from the previous N against (N / N_prev)^2 = P ratio.
  Targets at N=10,000: RDM job <= 1.5 x N^2 x 8 B + 0.5 GB, second order <= 2 GB (20 files of
  2 S = 16 GB of /tmp at N=10,000, generated once, deleted after; ``--rdm-only``: the RDM job alone);
- e, curve in K at N=1000: the cold second order of K=10 and K=100 (``--k-sizes``), medians of
  ``--repeats`` runs; K=1000 is case c.

Case b also measures a read floor: the seconds a fresh child takes only to read what the
incremental run must read (every one of the K+1 files' ``ranks`` in full, into one buffer), and
``--profile`` prints the incremental child's cProfile (top 10 by cumulative time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's rsaflow, first
from _common import REPO, limit_threads, machine, met, print_grid, print_table, versions

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
        def run():
            write_second_order(paths, out / "matrix.h5", out / "matrix.tsv",
                               {"method": args.method, "chunk_mb": args.chunk_mb}, "bench-code",
                               out_pairs=out / "pairs.h5", store_root=args.store)

        if args.profile:  # cProfile's overhead is counted in the seconds of this run
            import cProfile
            import io
            import pstats

            prof = cProfile.Profile()
            prof.runcall(run)
            text = io.StringIO()
            stats = pstats.Stats(prof, stream=text)
            stats.sort_stats("cumulative").print_stats(10)
            stats.sort_stats("tottime").print_stats(10)
            print("PROFILE\n" + text.getvalue(), file=sys.stderr)
        else:
            run()
    print(json.dumps({"seconds": time.perf_counter() - t0, "peak": vm_hwm()}))


def tile_child(args) -> None:
    """Run one tile job (rsaflow.jobs.second_order_tile.write_tile) in this fresh process, or with
    --assemble the second-order job over the tiles; print seconds and peak RSS as JSON."""
    limit_threads(args.threads)
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    from rsaflow.jobs.second_order import write_second_order
    from rsaflow.jobs.second_order_tile import write_tile

    job = json.loads(Path(args.paths).read_text())
    spec = {"method": args.method, "chunk_mb": args.chunk_mb}
    t0 = time.perf_counter()
    if args.assemble:
        out = Path(args.out)
        write_second_order(job["rdms"], out / "matrix.h5", out / "matrix.tsv", spec, "bench-code",
                           out_pairs=out / "pairs.h5", store_root=args.store, tile_paths=job["tiles"])
    else:
        write_tile(job["rows"], job["cols"], job["out"], spec, "bench-code", store_root=args.store)
    print(json.dumps({"seconds": time.perf_counter() - t0, "peak": vm_hwm()}))


def run_tiles(paths, labels, n_blocks, folder: Path, store, args, block=None) -> dict:
    """Every tile of ``paths`` (blocks by block_of; one model per RDM here) as its own child, then
    the assembly; per-tile seconds and peaks, and the entries computed (from the tiles' logs). With
    ``block``, only the tiles of that block run (as Snakemake reruns them when an RDM joins it); the
    others are kept."""
    import re

    from rsaflow.second_order.tiling import tile_members

    members = tile_members(labels, n_blocks)
    full = [i for i, m in enumerate(members) if m]
    tiles, seconds, peaks, computed = [], [], [], 0
    for a, i in enumerate(full):
        for j in full[a:]:
            out = folder / f"{i}_{j}.h5"
            tiles.append(str(out))
            if block is not None and block not in (i, j) and out.exists():
                continue
            spec = {"rows": [str(paths[x]) for x in members[i]], "cols": [str(paths[x]) for x in members[j]],
                    "out": str(out)}
            listing = folder / f"{i}_{j}.json"
            listing.write_text(json.dumps(spec))
            res = run_child(["--tile-child", "--paths", str(listing), "--store", str(store),
                             "--chunk-mb", str(args.chunk_mb)], args.threads)
            computed += sum(int(c) for c in re.findall(r"tile: reused \d+, computed (\d+)", res["stderr"]))
            tiles.append(str(out))
            seconds.append(res["seconds"])
            peaks.append(res["peak"])
    listing = folder / "assemble.json"
    listing.write_text(json.dumps({"rdms": [str(p) for p in paths], "tiles": tiles}))
    asm = run_child(["--tile-child", "--assemble", "--paths", str(listing), "--out", str(folder), "--store",
                     str(store), "--chunk-mb", str(args.chunk_mb)], args.threads)
    return {"tiles": len(seconds), "sum": sum(seconds), "max": max(seconds), "peak": max(peaks),
            "assemble": asm["seconds"], "assemble_peak": asm["peak"], "computed": computed}


def measure(paths, store, method="spearman", chunk_mb=256, threads=2, stacked=False, profile=False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "paths.json"
        listing.write_text(json.dumps([str(p) for p in paths]))
        cmd = [sys.executable, __file__, "--child", "--paths", str(listing), "--out", tmp, "--store", str(store),
               "--method", method, "--chunk-mb", str(chunk_mb), "--threads", str(threads)]
        if stacked:
            cmd.append("--stacked")
        if profile:
            cmd.append("--profile")
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-3000:])
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        res["log"] = [line for line in proc.stderr.splitlines() if "pairs:" in line]
        if profile:
            res["profile"] = proc.stderr[proc.stderr.find("PROFILE"):]
        return res


def run_child(extra: list[str], threads: int, script: str = __file__) -> dict:
    """Run ``script`` (this one by default) as a child with ``extra`` arguments; its last stdout
    line as JSON (+ stderr)."""
    cmd = [sys.executable, script, *extra, "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["stderr"] = proc.stderr
    return res


def floor_child(args) -> None:
    """Read floor: open every file and read its whole ``ranks`` into one buffer (plain h5py, no
    transform); then the same through rsaflow.rdmfile.vector_chunk (read + derive the unit vector)."""
    limit_threads(args.threads)
    import h5py

    from rsaflow import rdmfile

    paths = json.loads(Path(args.paths).read_text())
    with h5py.File(paths[0], "r") as f:
        buf = np.empty(f["ranks"].shape[0])
    t0 = time.perf_counter()
    for p in paths:
        with h5py.File(p, "r") as f:
            f["ranks"].read_direct(buf)
    raw = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p in paths:
        with h5py.File(p, "r") as f:
            rdmfile.vector_chunk(f, args.method, out=buf)
    vec = time.perf_counter() - t0
    print(json.dumps({"seconds": raw, "seconds_vector": vec, "bytes": len(paths) * buf.nbytes, "peak": vm_hwm()}))


def measure_floor(paths, method="spearman", threads=2) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "paths.json"
        listing.write_text(json.dumps([str(p) for p in paths]))
        return run_child(["--floor", "--paths", str(listing), "--method", method], threads)


def make_activations(path: Path, n: int, m: int, seed: int = 0) -> None:
    """An (N, M) float32 activation file in the extraction's layout (h5io kind ``activations``,
    chunks of (64, min(M, 8192)) rows x units, ``data_sha256`` recorded): a rank-16 structure plus
    noise, non-negative like post-ReLU units."""
    import hashlib

    from rsaflow import h5io

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 16)) @ rng.standard_normal((16, m)) + 0.5 * rng.standard_normal((n, m))
    x = np.maximum(x, 0).astype(np.float32)
    with h5io.atomic_h5(path, "activations") as f:
        f.create_dataset("activations", data=x, chunks=(min(n, 64), min(m, 8192)), track_times=False)
        h5io.set_attrs(f, {"model": "bench", "layer": "l", "node": "l", "node_index": 0, "stimulus_digest": "bench",
                           "data_sha256": hashlib.sha256(x.data).hexdigest()})


def rdm_child(args) -> None:
    """Run the ``rdm`` rule's function (rsaflow.jobs.rdm.write_rdm) in this fresh process, with a
    store of its own; print seconds and peak RSS as JSON."""
    limit_threads(args.threads)
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    from rsaflow import store
    from rsaflow.jobs.rdm import write_rdm

    store.STORE_DIR = Path(args.store)
    t0 = time.perf_counter()
    if args.rdm_floor:
        rdm_floor(args)
        computed = True
    else:
        computed = write_rdm(args.act, args.out, {"metric": args.rdm_metric, "block": 8192}, "bench-code", None,
                             args.threads)
    print(json.dumps({"seconds": time.perf_counter() - t0, "peak": vm_hwm(), "computed": computed}))


def rdm_floor(args) -> None:
    """The RDM job's work without the ranking and the per-method scalars: the row digests, the
    distances (rsaflow.rdm.rdm_from_h5: Gram by dsyrk, in place), the triangle and a file of the
    same datasets and bytes (the 'ranks' dataset holds a copy of the values). What any version
    of the job must do; the ranking's share is the job minus this."""
    import h5py

    from rsaflow import h5io, rdm_grow, rdmfile
    from rsaflow.rdm import rdm_from_h5

    with h5py.File(args.act, "r") as f:
        digests = rdm_grow.row_digests(f["activations"])
        rdm, _ = rdm_from_h5(f["activations"], args.rdm_metric, 8192)
    condensed, spare = rdmfile.upper_triangle_in_place(rdm)
    del rdm
    np.copyto(spare, condensed)
    h5io.write_h5(args.out, "rdm", {"condensed": condensed, "ranks": spare, "row_sha256": digests}, {"floor": 1})


def median_of(fn, repeats: int) -> dict:
    """Run ``fn()`` ``repeats`` times; the median of its seconds and of its peak, and every run's seconds."""
    return summarize([fn() for _ in range(max(1, repeats))])


def summarize(runs: list[dict]) -> dict:
    """The median seconds and peak of child runs, every run's seconds, and the last run."""
    return {"seconds": statistics.median(r["seconds"] for r in runs),
            "peak": statistics.median(r["peak"] for r in runs),
            "all": [r["seconds"] for r in runs], "last": runs[-1]}


def med(runs: list[dict], key: str = "seconds") -> float:
    return statistics.median(r[key] for r in runs)


def fmt_runs(runs: list[dict], key: str = "seconds") -> str:
    return ", ".join(f"{r[key]:.2f}" for r in runs) + " s"


def export_revision(rev: str, root: Path) -> str:
    """This repository's ``src`` and ``benchmarks`` at git revision ``rev``, exported under ``root``;
    returns that revision's bench_scale.py (its --rdm-job child runs that revision's RDM job)."""
    dest = root / f"rev-{rev}"
    dest.mkdir()
    archive = subprocess.run(["git", "archive", rev, "src", "benchmarks"], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return str(dest / "benchmarks" / "bench_scale.py")


def fresh(root: Path) -> Path:
    """A new, empty store folder under ``root``."""
    return Path(tempfile.mkdtemp(prefix="store_", dir=root))


def curve_n(args, root: Path, rows: list) -> None:
    """Case d: the RDM job and the second order of K RDM files at each N; one folder per N, deleted after."""
    ns = [200, 400] if args.quick else [int(x) for x in args.n_sizes.split(",")]
    kd = 5 if args.quick else args.k_curve
    table, prev = [], None
    ref_script = export_revision(args.reference_rev, root) if args.reference_rev else None
    for n in ns:
        d = root / f"d{n}"
        d.mkdir()
        p, s = n * (n - 1) // 2, 8 * n * (n - 1) // 2
        reps = args.repeats if n <= 2000 or ref_script is not None else 1
        act = d / "act.h5"
        make_activations(act, n, args.units)

        def rdm_once(script=__file__, keep=None, extra=()):
            out, st = d / "rdm_job.h5", fresh(root)
            res = run_child(["--rdm-job", "--act", str(act), "--out", str(out), "--store", str(st),
                             "--rdm-metric", args.rdm_metric, *extra], args.threads, script=script)
            res["size"] = out.stat().st_size
            if keep is not None:
                import h5py

                with h5py.File(out, "r") as f:
                    keep.update(condensed=f["condensed"][()], ranks=f["ranks"][()])
            out.unlink()
            shutil.rmtree(st)
            return res

        if ref_script is None:
            rj = median_of(rdm_once, reps)
        else:  # ours and the reference revision's job, round-robin, each its own fresh process and store
            ours_out, ref_out, runs = {}, {}, {"ours": [], "ref": [], "floor": []}
            for _ in range(max(1, reps)):
                runs["ours"].append(rdm_once(keep=ours_out))
                runs["ref"].append(rdm_once(ref_script, keep=ref_out))
                runs["floor"].append(rdm_once(extra=["--rdm-floor"]))
            rj, rr, rf = summarize(runs["ours"]), summarize(runs["ref"]), summarize(runs["floor"])
            same = all(np.array_equal(ours_out[k], ref_out[k]) for k in ("condensed", "ranks"))
            print(f"\nN={n}: rdm job at {args.reference_rev} {rr['seconds']:.2f} s (runs {rr['all']}), peak "
                  f"{rr['peak'] / GB:.3f} GB; ours {rj['seconds']:.2f} s (runs {rj['all']}), "
                  f"peak {rj['peak'] / GB:.3f} GB; condensed and ranks bit for bit equal: {same}")
            rows.append(dict(what=f"N={n} rdm job vs {args.reference_rev}", ours=f"{rj['seconds']:.2f} s",
                             reference=f"{rr['seconds']:.2f} s", ratio=f"{rj['seconds'] / rr['seconds']:.2f}x",
                             target="<= 0.5x, same values", met=met(rj["seconds"] <= 0.5 * rr["seconds"] and same)))
            print(f"N={n}: floor (digests, distances, triangle, a file of the same bytes; no ranking) "
                  f"{rf['seconds']:.2f} s (runs {rf['all']}) = {rf['seconds'] / rr['seconds']:.2f}x the reference; "
                  f"ours minus floor {rj['seconds'] - rf['seconds']:.2f} s, reference minus floor "
                  f"{rr['seconds'] - rf['seconds']:.2f} s")
            rows.append(dict(what=f"N={n} rdm job floor (no ranking) vs {args.reference_rev}",
                             ours=f"{rf['seconds']:.2f} s", reference=f"{rr['seconds']:.2f} s",
                             ratio=f"{rf['seconds'] / rr['seconds']:.2f}x", target="-", met="-"))
            rows.append(dict(what=f"N={n} rdm job peak vs {args.reference_rev}", ours=f"{rj['peak'] / GB:.3f} GB",
                             reference=f"{rr['peak'] / GB:.3f} GB", ratio=f"{rj['peak'] / rr['peak']:.2f}x",
                             target="<= 1x", met=met(rj["peak"] <= rr["peak"])))
        act.unlink()
        bound = 1.5 * n * n * 8 + 0.5 * GB
        print(f"\nN={n} (P={p:.3g}, S={s / 1e6:.1f} MB): rdm job ({args.rdm_metric}, M={args.units}) "
              f"{rj['seconds']:.2f} s, peak {rj['peak'] / GB:.3f} GB "
              f"(bound 1.5 N^2 8 B + 0.5 GB = {bound / GB:.2f} GB), file {rj['last']['size'] / s:.4f} S; "
              f"runs: rdm {rj['all']}")
        if args.rdm_only:  # no K files (16 GB at N=10,000) and no second order
            so = {"seconds": float("nan"), "peak": float("nan"), "all": []}
        else:
            t0 = time.perf_counter()
            paths = make_files(d, n, kd)
            gen = time.perf_counter() - t0
            so = median_of(lambda: measure(paths, fresh(root), chunk_mb=args.chunk_mb, threads=args.threads), reps)
            disk = sum(q.stat().st_size for q in paths)
            print(f"{kd} RDM files ({disk / GB:.2f} GB) written in {gen:.0f} s; second order {so['seconds']:.2f} s, "
                  f"peak {so['peak'] / GB:.3f} GB; runs: {so['all']}")
        shutil.rmtree(d)
        def growth(key, r, i):
            return "-" if prev is None else f"{r[key] / prev[i][key]:.2f}x"

        table.append([str(n), f"{p:.3g}", f"{rj['seconds']:.2f}", f"{rj['peak'] / GB:.3f}",
                      f"{rj['last']['size'] / s:.4f}", f"{so['seconds']:.2f}", f"{so['peak'] / GB:.3f}",
                      growth("seconds", rj, 1), growth("peak", rj, 1), growth("seconds", so, 2),
                      "-" if prev is None else f"{(n / prev[0]) ** 2:.2f}x", str(reps)])
        rows.append(dict(what=f"N={n} rdm job peak RSS", ours=f"{rj['peak'] / GB:.2f} GB",
                         reference=f"1.5 N^2 8 B + 0.5 GB = {bound / GB:.2f} GB", ratio=f"{rj['peak'] / bound:.2f}",
                         target="<= 1.5 N^2 8 B + 0.5 GB", met=met(rj["peak"] <= bound)))
        if not args.rdm_only:
            rows.append(dict(what=f"N={n} K={kd} second order peak RSS", ours=f"{so['peak'] / GB:.2f} GB",
                             reference=f"{kd * s / GB:.2f} GB stacked (size)", ratio=f"{kd * s / so['peak']:.1f}x",
                             target="<= 2 GB", met=met(so["peak"] <= 2 * GB)))
        prev = (n, {"seconds": rj["seconds"], "peak": rj["peak"]}, {"seconds": so["seconds"], "peak": so["peak"]})
    print_grid(f"curves in N: rdm job ({args.rdm_metric}, M={args.units}) and second order of K={kd} (spearman)",
                ["N", "P", "rdm s", "rdm GB", "file/S", "2nd s", "2nd GB", "rdm s x", "rdm GB x", "2nd s x",
                 "(N/Nprev)^2", "runs"], table)


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
    ap.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rdm-job", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rdm-floor", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tile-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--assemble", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--blocks", type=int, default=4, help="case f: compare.tiles (blocks per side)")
    ap.add_argument("--tile-k", type=int, default=100, help="case f: K (at N=1000)")
    ap.add_argument("--act", help=argparse.SUPPRESS)
    ap.add_argument("--profile", action="store_true", help="case b: cProfile of one incremental child (top 10)")
    ap.add_argument("--cases", default="a,b,c,d,e",
                    help="a: N=3000 K=41; b: K=100 +1 (with read floor); c: K=1000 (8 GB of files); "
                         "d: curves in N (16 GB of files at N=10,000); e: curve in K at N=1000; "
                         "f: tiles (compare.tiles) at N=1000, K=100 -> 101 vs one job")
    ap.add_argument("--n-sizes", default="1000,2000,5000,10000", help="case d: the N of the curve")
    ap.add_argument("--k-curve", type=int, default=20, help="case d: RDMs in each second order")
    ap.add_argument("--units", type=int, default=512, help="case d: M, units of the generated activations")
    ap.add_argument("--rdm-metric", default="euclidean", help="case d: the RDM job's metric")
    ap.add_argument("--rdm-only", action="store_true",
                    help="case d: only the RDM job (no K RDM files, no second order; 20 MB of /tmp at N=10,000)")
    ap.add_argument("--reference-rev", help="case d: also run the RDM job of this git revision (round-robin with "
                    "ours, --repeats each at every N; e.g. 92eebdb, where issue 22 measured 18 s at N=10,000)")
    ap.add_argument("--k-sizes", default="10,100", help="case e: the K of the curve at N=1000")
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs per measurement where cheap (case b, case e, case d at N <= 2000); medians")
    args = ap.parse_args()
    if args.child:
        child(args)
        return 0
    if args.floor:
        floor_child(args)
        return 0
    if args.rdm_job:
        rdm_child(args)
        return 0
    if args.tile_child:
        tile_child(args)
        return 0
    print(f"machine: {machine()}; threads: {args.threads}; chunk_mb: {args.chunk_mb}")
    print(versions("numpy", "scipy", "h5py"))
    n1, k1 = (300, 11) if args.quick else (3000, 41)
    n2, k2 = (200, 20) if args.quick else (1000, 100)
    n3, k3 = (200, 60) if args.quick else (1000, 1000)
    rows = []
    k_curve = {}  # K -> cold second order at N=n2 (cases c, e)
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
            incs, colds, floors = [], [], []
            for _ in range(max(1, args.repeats)):  # interleaved: incremental, cold, floor, ...
                inc_store = fresh(root)
                shutil.copytree(store, inc_store, dirs_exist_ok=True)  # only the K=100 object, every time
                incs.append(measure(paths, inc_store, chunk_mb=args.chunk_mb, threads=args.threads))
                colds.append(measure(paths, fresh(root), chunk_mb=args.chunk_mb, threads=args.threads))
                floors.append(measure_floor(paths, threads=args.threads))
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            inc_s, cold_s = med(incs), med(colds)
            floor_s, floor_vec = med(floors), med(floors, "seconds_vector")
            inc = incs[-1]
            print(f"\nN={n2}: cold K={k2}: {base['seconds']:.2f} s; +1 incremental: {inc_s:.2f} s "
                  f"({inc['log'][-1] if inc['log'] else ''}); cold K={k2 + 1}: {cold_s:.2f} s, "
                  f"peak {colds[-1]['peak'] / GB:.3f} GB; medians of {len(incs)} "
                  f"(incremental {fmt_runs(incs)}; cold {fmt_runs(colds)}); load average: {load}")
            print(f"read floor (fresh child: open each of the {k2 + 1} files, read `ranks` whole into one buffer, "
                  f"{floors[-1]['bytes'] / 1e6:.0f} MB): {floor_s:.3f} s ({fmt_runs(floors)}); read + derive "
                  f"the unit vector (rdmfile.vector_chunk): {floor_vec:.3f} s; "
                  f"incremental / floor {inc_s / floor_s:.1f}x, cold / floor {cold_s / floor_s:.1f}x")
            if args.profile:
                prof_store = fresh(root)
                shutil.copytree(store, prof_store, dirs_exist_ok=True)
                prof = measure(paths, prof_store, chunk_mb=args.chunk_mb, threads=args.threads, profile=True)
                print(f"cProfile of one incremental child ({prof['seconds']:.2f} s under the profiler):")
                print(prof["profile"])
            rows.append(dict(what=f"N={n2} +1 RDM to K={k2} vs cold K={k2 + 1}", ours=f"{inc_s:.2f} s",
                             reference=f"{cold_s:.2f} s", ratio=f"{cold_s / inc_s:.1f}x",
                             target=">= 20x", met=met(cold_s / inc_s >= 20)))
            rows.append(dict(what=f"N={n2} read floor, K+1={k2 + 1} ranks", ours=f"{floor_s:.3f} s",
                             reference=f"inc {inc_s:.2f} s, cold {cold_s:.2f} s",
                             ratio=f"inc/floor {inc_s / floor_s:.1f}x, cold/floor {cold_s / floor_s:.1f}x"))
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
            k_curve[k3] = res
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

        # --- d: curves in N, K=20 ---------------------------------------------------------------
        if "d" in cases:
            curve_n(args, root, rows)

        # --- e: curve in K at N=1000 --------------------------------------------------------------
        if "e" in cases:
            ks = [5, 20] if args.quick else [int(x) for x in args.k_sizes.split(",")]
            d = root / "e"
            d.mkdir()
            paths = make_files(d, n2, max(ks))
            for k in ks:
                k_curve[k] = median_of(lambda: measure(paths[:k], fresh(root), chunk_mb=args.chunk_mb,
                                                       threads=args.threads), args.repeats)
            shutil.rmtree(d)
        if k_curve:
            p2 = n2 * (n2 - 1) // 2
            table, prev = [], None
            for k in sorted(k_curve):
                r = k_curve[k]
                grow = "-" if prev is None else (f"{r['seconds'] / k_curve[prev]['seconds']:.1f}x "
                                                 f"(K^2: {(k / prev) ** 2:.0f}x, K: {k / prev:.0f}x)")
                runs = f"median of {len(r['all'])}" if "all" in r else "1 run (case c)"
                table.append([str(k), f"{k * k * p2 / 2:.2e}", f"{r['seconds']:.2f}", f"{r['peak'] / GB:.3f}",
                              grow, runs])
                prev = k
            print_grid(f"curve in K: cold second order (spearman), N={n2}",
                        ["K", "K^2 P / 2", "seconds", "peak GB", "growth of seconds", "runs"], table)
        if "f" in cases:
            d = root / "f"
            d.mkdir()
            kf = 20 if args.quick else args.tile_k
            paths = make_files(d, n2, kf + 1)
            labels = [f"m{i:04d}/l" for i in range(kf + 1)]
            store = fresh(root)
            one = measure(paths[:kf], fresh(root), chunk_mb=args.chunk_mb, threads=args.threads)
            (d / "t1").mkdir()
            cold = run_tiles(paths[:kf], labels[:kf], args.blocks, d / "t1", store, args)
            (d / "t2").mkdir()
            for t in (d / "t1").glob("*.h5"):  # the tiles of the earlier run, as Snakemake would keep them
                shutil.copy(t, d / "t2" / t.name)
            from rsaflow.second_order.tiling import block_of

            added = run_tiles(paths, labels, args.blocks, d / "t2", store, args, block_of(labels[-1], args.blocks))
            print(f"tiles B={args.blocks}, N={n2}: K={kf} one job {one['seconds']:.2f} s / {one['peak'] / GB:.3f} GB; "
                  f"{cold['tiles']} tiles: sum {cold['sum']:.2f} s, longest {cold['max']:.2f} s, peak "
                  f"{cold['peak'] / GB:.3f} GB, assembly {cold['assemble']:.2f} s / {cold['assemble_peak'] / GB:.3f} GB; "
                  f"+1 RDM: tiles rerun {added['tiles']}, entries computed "
                  f"{added['computed']}, sum {added['sum']:.2f} s")
            rows.append(dict(what=f"N={n2} K={kf} tiles B={args.blocks}: longest tile vs one job",
                             ours=f"{cold['max']:.2f} s", reference=f"{one['seconds']:.2f} s",
                             ratio=f"{one['seconds'] / cold['max']:.1f}x", target="parallel", met="-"))
            rows.append(dict(what=f"N={n2} K={kf} tiles: largest tile peak RSS", ours=f"{cold['peak'] / GB:.3f} GB",
                             reference=f"{one['peak'] / GB:.3f} GB", ratio="-", target="bounded", met="-"))
            shutil.rmtree(d)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_table("second order at scale", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
