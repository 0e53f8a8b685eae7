"""Activation extraction (ResNet-50 avgpool, CPU, float32): rsaflow vs the tutorial's whole-set forward.

    python benchmarks/bench_extract.py            # the targets' sizes (about 7-8 minutes on 2 cores)
    python benchmarks/bench_extract.py --quick    # smoke run (resnet18, N=16/32)

Inputs: random uint8 images (N, 3, 32, 32), seeded, stored as a stimuli HDF5 file
(``rsaflow.h5io.write_h5``); the model is ``resnet50`` with ``weights=None`` (seeded), the
transforms those of its default weights (resize to 256, centre crop 224, normalise).

Each measurement runs in a fresh subprocess; its peak RSS is read by the parent with
``os.wait4`` (ru_maxrss of that child only). Images/s counts the work from reading the images to
having the activations in memory (ours: ``extract_model``' own timer, which also covers
writing them to HDF5), not the model build or the imports.

- ours: ``rsaflow.extract.extract_model`` with the workflow's spec (batch 16,
  channels_last), also batch 64 and channels_last False;
- reference (the tutorial): all N images read, converted and transformed at once and sent through
  ``create_feature_extractor(model, {'avgpool': ...})`` in one call, then ``.detach()`` and
  ``squeeze`` -- with autograd on, as the tutorial does (eval mode, no ``no_grad``), and, for
  information, under ``torch.inference_mode()`` (--ref-modes).

The reference's memory grows linearly with N (autograd keeps every layer's activations: about
85 MiB per image for ResNet-50 at 224 px). Two small probe runs (--probe-ns) measure that slope;
the reference is then run only at sizes predicted to fit in 85% of --ref-mem-gb (a child also runs
under that address-space limit, so a misprediction fails in the child, not in the OOM killer).
Its images/s is measured at the largest N <= --n-small that fits, and its RSS at --n-large, when
it cannot run, is extrapolated linearly from the two largest sizes measured (labelled as such).

Agreement: ours and the reference activations (same images, same weights) must agree to
max |diff| <= 1e-4 x max |activation| (batching and memory format change float32 rounding).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import REPO, machine, met, print_table, versions

HERE = Path(__file__).resolve().parent
RTOL = 1e-4


# ----------------------------------------------------------------------------- children
def child_ours(a) -> dict:
    import torch

    from rsaflow.extract import extract_model

    torch.set_num_threads(a.threads)
    spec = {"model": a.arch, "arch": a.arch, "weights": "none", "seed": 0,
            "layers": {"avgpool": {"node": "avgpool", "reduce": "flatten"}}, "batch_size": a.batch, "device": "cpu",
            "precision": "float32", "channels_last": a.channels_last}
    summary = extract_model(a.stimuli, a.out, spec, a.threads, {})
    return {"seconds": summary["seconds"], "n": summary["n_stimuli"], "m": summary["n_units"]["avgpool"]}


def child_ref(a) -> dict:
    """The tutorial's extraction: the whole stimulus set in one forward pass."""
    import h5py
    import torch
    from torchvision.models import get_model, get_model_weights
    from torchvision.models.feature_extraction import create_feature_extractor

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = get_model(a.arch, weights=None).eval()
    transforms = get_model_weights(a.arch).DEFAULT.transforms()
    extractor = create_feature_extractor(model=model, return_nodes={"avgpool": "penultimate_layer"})
    t0 = time.perf_counter()
    with h5py.File(a.stimuli, "r") as f:
        images = torch.from_numpy(f["images"][()])
    x = images.to(torch.float32).div_(255.0)  # as v2.ToDtype(torch.float32, scale=True)
    if a.mode == "grad":  # the tutorial: eval mode, autograd on, detach afterwards
        out = extractor(transforms(x))["penultimate_layer"].detach()
    else:
        with torch.inference_mode():
            out = extractor(transforms(x))["penultimate_layer"]
    acts = torch.squeeze(out).reshape(len(x), -1).numpy()
    seconds = time.perf_counter() - t0
    np.save(a.out, acts)
    return {"seconds": seconds, "n": int(acts.shape[0]), "m": int(acts.shape[1])}


def child_main(argv) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--child", choices=["ours", "ref"], required=True)
    p.add_argument("--stimuli", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--channels-last", type=int, default=1)
    p.add_argument("--mode", default="grad")
    p.add_argument("--mem-gb", type=float, default=0)
    a = p.parse_args(argv)
    a.channels_last = bool(a.channels_last)
    if a.mem_gb:
        import resource

        limit = int(a.mem_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        result = child_ours(a) if a.child == "ours" else child_ref(a)
    except (MemoryError, RuntimeError) as exc:  # allocation failures under the address-space limit
        if "memory" not in str(exc).lower() and not isinstance(exc, MemoryError):
            raise
        result = {"error": f"out of memory under the {a.mem_gb:g} GB address-space limit ({type(exc).__name__})"}
    print("RESULT " + json.dumps(result), flush=True)
    return 0


# ----------------------------------------------------------------------------- parent
def make_stimuli(path: Path, n: int, size: int, seed: int = 0) -> None:
    from rsaflow import h5io

    # image i depends only on (seed, i): the sets of different N share their first images
    images = np.stack([np.random.default_rng([seed, i]).integers(0, 256, size=(3, size, size), dtype=np.uint8)
                       for i in range(n)])
    labels = (np.arange(n) % 10).astype(np.int64)
    h5io.write_h5(path, "stimuli", {"images": images, "labels": labels, "indices": np.arange(n, dtype=np.int64),
                                     "class_names": np.array([f"c{i}" for i in range(10)], dtype=object)},
                  {"digest": f"bench-{n}-{size}-{seed}"})


def run_child(args: list[str], timeout: float) -> dict:
    """Run this script as a child; return its RESULT dict plus its peak RSS (MiB) and wall time."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.pop(var, None)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = t0 + timeout
    while True:  # wait4 gives this child's own rusage (ru_maxrss in KiB on Linux)
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            return {"error": f"timed out after {timeout:.0f} s", "rss_mib": usage.ru_maxrss / 1024}
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    result = {}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
    if not result:
        tail = (err or out).strip().splitlines()[-3:]
        result = {"error": f"exit {proc.returncode}: {' | '.join(tail)}"}
    result["rss_mib"] = usage.ru_maxrss / 1024
    result["wall"] = wall
    return result


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def main(argv=None) -> int:
    if argv is None and "--child" in sys.argv:
        return child_main(sys.argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--n-small", type=int, default=200, help="N for images/s and the small RSS (target: 200)")
    p.add_argument("--n-large", type=int, default=2000, help="N for the large RSS (target: 2000)")
    p.add_argument("--ref-ns", default="400", help="further N for the reference's RSS (run when predicted to fit)")
    p.add_argument("--probe-ns", default="32,64", help="two small N that measure the reference's memory per image")
    p.add_argument("--ref-modes", default="grad,inference", help="reference modes: grad (the tutorial), inference")
    p.add_argument("--ref-mem-gb", type=float, default=12.0, help="address-space limit for a reference child")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3, help="runs of ours (default spec) and the reference (medians)")
    p.add_argument("--variant-repeats", type=int, default=2, help="runs of each other variant of ours")
    p.add_argument("--variants", default="16:1,64:1,16:0", help="ours: batch:channels_last pairs to compare")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--timeout", type=float, default=600, help="seconds per child")
    p.add_argument("--quick", action="store_true", help="smoke run: resnet18, N=16 and 32, one repeat")
    args = p.parse_args(argv)
    if args.quick:
        args.arch, args.n_small, args.n_large, args.ref_ns, args.probe_ns = "resnet18", 16, 32, "", "4,8"
        args.repeats, args.variant_repeats, args.variants, args.ref_modes = 1, 1, "16:1,16:0", "grad"
    ref_ns = sorted({int(v) for v in args.ref_ns.split(",") if v})
    probe_ns = sorted(int(v) for v in args.probe_ns.split(","))
    modes = [m for m in args.ref_modes.split(",") if m]
    variants = [(int(b), bool(int(c))) for b, c in (v.split(":") for v in args.variants.split(","))]
    default_variant = (16, True)
    if default_variant not in variants:
        variants.insert(0, default_variant)

    print(f"machine: {machine()}; threads: {args.threads}")
    print(versions("numpy", "torch", "torchvision", "h5py"))
    print(f"\nextraction: {args.arch} (weights=None, seed 0), avgpool, float32, CPU; random uint8 "
          f"{args.image_size}x{args.image_size} images upscaled by the weights' transforms")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        stim = {}

        def stimuli(n):  # the first n of one seeded image stream
            if n not in stim:
                stim[n] = tmp / f"stimuli{n}.h5"
                make_stimuli(stim[n], n, args.image_size)
            return stim[n]

        def ours(n, batch, cl, tag):
            out = tmp / f"act_{tag}"
            r = run_child(["--child", "ours", "--stimuli", str(stimuli(n)), "--out", str(out), "--arch", args.arch,
                           "--threads", str(args.threads), "--batch", str(batch), "--channels-last", str(int(cl))],
                          args.timeout)
            if "error" not in r:
                import h5py

                with h5py.File(out / "avgpool.h5", "r") as f:
                    r["acts"] = f["activations"][()]
                r["ips"] = r["n"] / r["seconds"]
            return r

        def ref(n, mode, tag):
            out = tmp / f"ref_{tag}.npy"
            r = run_child(["--child", "ref", "--stimuli", str(stimuli(n)), "--out", str(out), "--arch", args.arch,
                           "--threads", str(args.threads), "--mode", mode, "--mem-gb", str(args.ref_mem_gb)],
                          args.timeout)
            if "error" not in r:
                r["acts"] = np.load(out)
                r["ips"] = r["n"] / r["seconds"]
            return r

        def ref_label(m):
            return "tutorial (autograd on)" if m == "grad" else "whole set, inference_mode (info)"

        # 1. the reference's memory per image, from two small probe runs, decides which N it can run at
        limit_mib = args.ref_mem_gb * 1024
        rss_points = {m: {} for m in modes}
        plan = {}
        for m in modes:
            for pn in probe_ns:
                r = ref(pn, m, f"probe_{m}_{pn}")
                if "error" not in r:
                    rss_points[m][pn] = r["rss_mib"]
            pts = rss_points[m]
            if len(pts) >= 2:
                a_, b_ = sorted(pts)[-2:]
                slope = (pts[b_] - pts[a_]) / (b_ - a_)
                predict = (lambda nn, b_=b_, slope=slope, pts=pts: pts[b_] + slope * (nn - b_))
            else:
                predict = (lambda nn: float("inf"))
            fit_n = args.n_small
            while fit_n > probe_ns[-1] and predict(fit_n) > 0.85 * limit_mib:
                fit_n = max(probe_ns[-1], fit_n // 2)
            plan[m] = (fit_n, predict)
            print(f"reference ({m}): probes {', '.join(f'N={k}: {v:.0f} MiB' for k, v in sorted(pts.items()))}; "
                  f"images/s measured at N={fit_n}"
                  + ("" if fit_n == args.n_small else f" (N={args.n_small} predicted at {predict(args.n_small):.0f} MiB "
                                                       f"> 85% of the {args.ref_mem_gb:g} GB limit)"))

        # 2. images/s at n_small: ours (each variant) and the reference, round-robin, medians
        n = args.n_small
        speed = {v: [] for v in variants}
        ref_runs = {m: [] for m in modes}
        for rep in range(args.repeats):
            for v in variants:
                if v == default_variant or rep < args.variant_repeats:
                    speed[v].append(ours(n, v[0], v[1], f"{v[0]}_{int(v[1])}_{rep}"))
            for m in modes:
                if not ref_runs[m] or "error" not in ref_runs[m][0]:
                    ref_runs[m].append(ref(plan[m][0], m, f"{m}_{plan[m][0]}_{rep}"))
        print(f"\nimages/s at N={n} (median of {args.repeats} for the default, {args.variant_repeats} for the other "
              f"variants; each run a fresh process)")
        med = {}
        for v, runs in speed.items():
            ok = [r for r in runs if "error" not in r]
            if not ok:
                print(f"  ours batch {v[0]}, channels_last {v[1]}: FAILED {runs[0]['error']}")
                continue
            med[v] = float(np.median([r["ips"] for r in ok]))
            print(f"  ours batch {v[0]:>3}, channels_last {str(v[1]):5}: {med[v]:6.2f} images/s "
                  f"(runs: {', '.join(format(r['ips'], '.2f') for r in ok)}); peak RSS {max(r['rss_mib'] for r in ok):.0f} MiB")
        ours_default = speed[default_variant][0] if speed[default_variant] else {"error": "no run"}
        for m, runs in ref_runs.items():
            ok = [r for r in runs if "error" not in r]
            rn = plan[m][0]
            if not ok:
                print(f"  reference ({m}) N={rn}: {runs[0]['error']}; peak RSS {runs[0]['rss_mib']:.0f} MiB")
                continue
            rss_points[m][rn] = float(np.median([r["rss_mib"] for r in ok]))
            ips = float(np.median([r["ips"] for r in ok]))
            k = min(rn, len(ours_default.get("acts", [])))
            diff = rel_diff(ours_default["acts"][:k], ok[0]["acts"][:k]) if k else float("nan")
            print(f"  reference, whole set in one forward ({m}), N={rn}: {ips:6.2f} images/s "
                  f"(runs: {', '.join(format(r['ips'], '.2f') for r in ok)}); peak RSS {rss_points[m][rn]:.0f} MiB; "
                  f"max |ours - ref| / max |ref| = {diff:.1e} (first {k} images)")
            if default_variant in med:
                ratio = med[default_variant] / ips
                at = "" if rn == n else f" [ref at N={rn}: N={n} does not fit]"
                rows.append(dict(what=f"images/s N={n}: ours (b16, CL) vs {ref_label(m)}{at}",
                                 ours=f"{med[default_variant]:.2f}/s", reference=f"{ips:.2f}/s",
                                 ratio=f"ours/ref {ratio:.2f}", target=">= 1.2" if m == "grad" else "(info)",
                                 met=met(ratio >= 1.2 and diff <= RTOL) if m == "grad" else met(diff <= RTOL)))
        if med:
            best = max(med, key=med.get)
            base = med.get(default_variant)
            print(f"  fastest of ours: batch {best[0]}, channels_last {best[1]}"
                  + (f" ({med[best] / base:.2f}x the workflow default batch 16, channels_last True)" if base else ""))
            for v in variants:
                if v != default_variant and v in med and base:
                    rows.append(dict(what=f"ours batch {v[0]}, channels_last {v[1]} vs default (b16, CL)",
                                     ours=f"{med[v]:.2f}/s", reference=f"{base:.2f}/s", ratio=f"{med[v] / base:.2f}",
                                     target="(info)"))

        # 3. peak RSS: ours at n_small vs n_large
        print(f"\npeak RSS, ours (batch 16, channels_last): N={args.n_small} vs N={args.n_large}")
        small = [r for r in speed[default_variant] if "error" not in r]
        large = ours(args.n_large, 16, True, f"large_{args.n_large}")
        if small and "error" not in large:
            rss_s = float(np.median([r["rss_mib"] for r in small]))
            ratio = large["rss_mib"] / rss_s
            print(f"  N={args.n_small}: {rss_s:.0f} MiB; N={args.n_large}: {large['rss_mib']:.0f} MiB "
                  f"({large['ips']:.2f} images/s over the large set)")
            rows.append(dict(what=f"ours peak RSS N={args.n_large} vs N={args.n_small}", ours=f"{large['rss_mib']:.0f} MiB",
                             reference=f"{rss_s:.0f} MiB", ratio=f"{ratio:.2f}", target="<= 1.3", met=met(ratio <= 1.3)))
        else:
            print(f"  FAILED: {large.get('error')}")

        # 4. peak RSS of the reference: the other --ref-ns that are predicted to fit, then n_large measured
        #    if predicted to fit, else extrapolated from the two largest measured sizes (labelled)
        for m in modes:
            predict = plan[m][1]
            for rn in ref_ns + [args.n_large]:
                if rn in rss_points[m] or predict(rn) > 0.85 * limit_mib:
                    continue
                r = ref(rn, m, f"rss_{m}_{rn}")
                if "error" in r:
                    print(f"  reference ({m}) N={rn}: did not fit ({r['error']})")
                    break
                rss_points[m][rn] = r["rss_mib"]
            pts = rss_points[m]
            print(f"  reference ({m}): " + ", ".join(f"N={k}: {v:.0f} MiB" for k, v in sorted(pts.items())))
            if args.n_large in pts:
                ref_large, how = pts[args.n_large], "measured"
            elif len(pts) >= 2:
                a_, b_ = sorted(pts)[-2:]
                slope = (pts[b_] - pts[a_]) / (b_ - a_)
                ref_large = pts[b_] + slope * (args.n_large - b_)
                how = f"EXTRAPOLATED linearly from N={a_},{b_} ({slope:.1f} MiB/image); not run: over the limit"
            else:
                ref_large, how = None, "not measurable"
            if ref_large is not None:
                print(f"  reference ({m}) N={args.n_large}: {ref_large:.0f} MiB ({how})")
                if "error" not in large:
                    rows.append(dict(what=f"peak RSS N={args.n_large}: ours vs {ref_label(m).replace(' (info)', '')}",
                                     ours=f"{large['rss_mib']:.0f} MiB",
                                     reference=f"{ref_large:.0f} MiB" + (" (extrap.)" if how != "measured" else ""),
                                     ratio=f"ref/ours {ref_large / large['rss_mib']:.1f}", target="(info)"))

    print_table(f"extraction ({args.arch}, CPU float32)", rows)
    if args.quick:
        print("(--quick: resnet18 and tiny N; a smoke check of the script, not of the targets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
