"""Per-stimulus reuse of activations (issue 22 item 1): a grown and a subset stimulus set vs cold.

    python benchmarks/bench_growth.py            # N=1,000 grown by 100, subset of 500, 4 networks
    python benchmarks/bench_growth.py --quick    # N=40 grown by 4, subset 20, 2 networks (~20 s)

Inputs: random uint8 images (N, 3, 32, 32), seeded, as a stimuli HDF5 file (the layout the
stimuli job writes); the networks are untrained torchvision models (``weights: none``, seeded)
with their default weights' transforms (resize 256 / crop 224, so every image costs a 224 px
forward), one or two layers each, CPU, float32, batch 16, as the workflow's activations job
calls :func:`rsaflow.extract.extract_model` (in this process: model build, image digests,
forward passes, shard writes and the assembly of every layer file are timed; the imports not).

Timed, per repeat, each against an empty store unless said:
- cold 1,100: the reference;
- grown: a store filled by the first 1,000 (not timed), then the 1,100 -> forwards the 100 new;
- subset: 500 of the 1,100 (every other image, reversed) with the cold 1,100's shards: no forward;
- cold 500: the same subset against an empty store (the subset's own cold reference).
Ratios are of medians over ``--repeats`` (round-robin, so load hits every case alike). Checks:
forward counts from the summaries (exactly 100 and 0) and the assembled files against the cold
files of the same set (rtol 1e-5, atol 1e-6 x max |value|: see docs/reruns.md).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from _common import machine, met, print_table, versions

NETS = {
    "resnet18": {"avgpool": {"node": "avgpool", "reduce": "flatten"}, "layer3": {"node": "layer3", "reduce": "mean"}},
    "squeezenet1_1": {"features": {"node": "features.12", "reduce": "flatten"}},
    "mobilenet_v3_small": {"avgpool": {"node": "avgpool", "reduce": "flatten"}},
    "alexnet": {"fc6": {"node": "classifier.2", "reduce": "flatten"}},
}


def write_stimuli(path: Path, images: np.ndarray) -> None:
    from rsaflow import h5io
    from rsaflow.stimuli import stimulus_digest

    n = len(images)
    labels, indices = np.zeros(n, dtype=np.int64), np.arange(n, dtype=np.int64)
    h5io.write_h5(path, "stimuli", {"images": images, "labels": labels, "indices": indices,
                                    "class_names": np.array(["c"], dtype=object)},
                  {"digest": stimulus_digest(images, labels, indices, ["c"]), "source": {}})


def extract_all(stimuli: Path, out: Path, store_dir: Path, nets: list[str], batch: int) -> tuple[float, dict]:
    """Every network's extraction as the workflow's job runs it; (seconds, model -> summary)."""
    from rsaflow import shards
    from rsaflow.extract import extract_model

    shards.STORE_DIR = store_dir
    summaries, t0 = {}, time.perf_counter()
    for arch in nets:
        spec = {"model": arch, "arch": arch, "weights": "none", "seed": 0, "layers": NETS[arch],
                "batch_size": batch, "device": "cpu", "precision": "float32", "channels_last": False}
        summaries[arch] = extract_model(stimuli, out / arch, spec, 1, {})
    return time.perf_counter() - t0, summaries


def read(folder: Path) -> dict:
    out = {}
    for path in sorted(folder.rglob("*.h5")):
        with h5py.File(path) as f:
            out[path.relative_to(folder).as_posix()] = f["activations"][()]
    return out


def max_rel_diff(a: dict, b: dict) -> float:
    assert sorted(a) == sorted(b)
    return max(float(np.abs(a[k] - b[k]).max() / max(np.abs(b[k]).max(), 1e-30)) for k in a)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--grow", type=int, default=100)
    p.add_argument("--subset", type=int, default=500)
    p.add_argument("--nets", default=",".join(NETS))
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3, help="round-robin repeats (the full run: ~6 min each on 2 cores)")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    if a.quick:
        a.n, a.grow, a.subset, a.nets, a.repeats = 40, 4, 20, "squeezenet1_1,mobilenet_v3_small", 1
    import torch

    torch.set_num_threads(a.threads)
    nets = a.nets.split(",")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(a.n + a.grow, 3, 32, 32), dtype=np.uint8)
    subset = np.arange(a.n + a.grow)[::-1][:: max(1, (a.n + a.grow) // a.subset)][: a.subset]
    tmp = Path(tempfile.mkdtemp(prefix="bench_growth-"))
    try:
        paths = {"first": tmp / "first.h5", "grown": tmp / "grown.h5", "subset": tmp / "subset.h5"}
        write_stimuli(paths["first"], images[: a.n])
        write_stimuli(paths["grown"], images)
        write_stimuli(paths["subset"], images[subset])
        times = {k: [] for k in ("cold", "subset", "grown", "cold_subset")}
        checks = {}
        for r in range(a.repeats):
            for case in times:
                work = tmp / f"r{r}-{case}"
                store_dir = work / "store"
                if case == "grown":
                    extract_all(paths["first"], work / "setup", store_dir, nets, a.batch)
                if case == "subset":  # the store the cold 1,100 just filled
                    store_dir = tmp / f"r{r}-cold" / "store"
                stim = paths["subset"] if case in ("subset", "cold_subset") else paths["grown"]
                seconds, summaries = extract_all(stim, work / "out", store_dir, nets, a.batch)
                times[case].append(seconds)
                checks[case] = ({m: s["forwarded"] for m, s in summaries.items()}, read(work / "out"))
                print(f"repeat {r + 1}/{a.repeats} {case}: {seconds:.2f} s, forwarded "
                      f"{sum(s['forwarded'] for s in summaries.values())}", flush=True)
            for case in times:
                if r + 1 < a.repeats:
                    shutil.rmtree(tmp / f"r{r}-{case}", ignore_errors=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        fwd_grown = checks["grown"][0]
        fwd_subset = checks["subset"][0]
        diff_grown = max_rel_diff(checks["grown"][1], checks["cold"][1])
        diff_subset = max_rel_diff(checks["subset"][1], checks["cold_subset"][1])
        n1 = a.n + a.grow
        print(f"\nmachine: {machine()}; {versions('numpy', 'torch', 'torchvision', 'h5py')}")
        print(f"forwarded: grown {fwd_grown} (expected {a.grow} each), subset {fwd_subset} (expected 0); "
              f"max |assembled - cold| / max |cold|: grown {diff_grown:.2e}, subset {diff_subset:.2e}")
        ok_counts = all(v == a.grow for v in fwd_grown.values()) and all(v == 0 for v in fwd_subset.values())
        rows = [
            {"what": f"extraction, N={a.n} grown by {a.grow} ({len(nets)} nets)", "ours": f"{med['grown']:.2f} s",
             "reference": f"cold {n1}: {med['cold']:.2f} s", "ratio": f"{med['grown'] / med['cold']:.3f}x",
             "target": "<= 0.2x", "met": met(med["grown"] / med["cold"] <= 0.2 and ok_counts)},
            {"what": f"subset of {a.subset} (no forward)", "ours": f"{med['subset']:.2f} s",
             "reference": f"cold {a.subset}: {med['cold_subset']:.2f} s",
             "ratio": f"{med['subset'] / med['cold_subset']:.3f}x", "target": "<= 0.1x",
             "met": met(med["subset"] / med["cold_subset"] <= 0.1 and ok_counts)},
            {"what": f"subset of {a.subset} vs cold {n1}", "ours": f"{med['subset']:.2f} s",
             "reference": f"cold {n1}: {med['cold']:.2f} s", "ratio": f"{med['subset'] / med['cold']:.3f}x",
             "target": "-", "met": "-"},
            {"what": "agreement with cold (max rel. diff)", "ours": f"{max(diff_grown, diff_subset):.1e}",
             "reference": "rtol 1e-5", "ratio": "-", "target": "<= 1e-5",
             "met": met(max(diff_grown, diff_subset) <= 1e-5)},
        ]
        print_table(f"per-stimulus reuse, medians of {a.repeats}", rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
