"""One-pass extraction of the default config's four networks on a GPU: images/s per network and in total.

For the issue's GPU check (run it unchanged where a CUDA device exists; elsewhere the GPU rows
are skipped): the default config's networks and layers (untrained, seeded weights: nothing is
downloaded), N generated 32x32 uint8 images (CIFAR-sized) upscaled by each model's transforms on
the device, extracted with rsaflow's one-pass extraction (``extract_model``: uint8 batches pinned
and copied without blocking, the next batch read while the current one runs, deterministic
kernels). Prints images/s per network (model set-up excluded: the second of two runs is timed on
the first ``--warm`` images), the total extraction seconds against the 15 s goal for N=10,000,
and the largest difference between GPU and CPU RDMs on the first ``--cpu-n`` images.

    python benchmarks/bench_gpu.py [--n 10000] [--cpu-n 100] [--threads 16] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from _common import REPO, limit_threads, machine, print_table, versions


def _stimuli(path, images):
    from rsaflow import h5io

    n = len(images)
    h5io.write_h5(path, "stimuli", {"images": images, "labels": np.arange(n) % 10, "indices": np.arange(n),
                                    "class_names": np.array(["c"], dtype=object)}, {"digest": f"bench{n}"})
    return path


def _extract(stim, out, key, spec, device, batch_size, threads):
    from rsaflow.extract import extract_model

    s = {"model": key, "arch": spec["arch"], "weights": "none", "seed": 0, "layers": spec["layers"],
         "batch_size": batch_size, "device": device, "precision": "float32", "channels_last": True}
    return extract_model(stim, out, s, threads, {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="stimuli on the GPU")
    parser.add_argument("--cpu-n", type=int, default=100, help="stimuli on the CPU (the first of the GPU's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="alexnet only, 20 images")
    args = parser.parse_args()
    limit_threads(args.threads)
    import h5py
    import torch

    from rsaflow.config import normalise
    from rsaflow.rdm import compute_rdm

    print(machine())
    print(versions("torch", "torchvision", "numpy"))
    gpu = torch.cuda.is_available()
    print("cuda:", torch.cuda.get_device_name(0) if gpu else "not available (GPU rows skipped)")
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    models = normalise({**config, "rdm": {"metric": "euclidean"}, "compare": {"method": "spearman", "bootstrap": 0,
                                                                               "permutations": 0}})["models"]
    if args.quick:
        models = {"alexnet": models["alexnet"]}
        args.n, args.cpu_n = 20, 20
    images = np.random.default_rng(0).integers(0, 256, size=(args.n, 3, 32, 32), dtype=np.uint8)
    rows, total = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        stim = {n: _stimuli(Path(tmp) / f"stimuli{n}.h5", images[:n]) for n in {args.n, args.cpu_n}}
        for key, spec in models.items():
            result = {}
            for device, n in (("cuda", args.n), ("cpu", args.cpu_n)):
                if device == "cuda" and not gpu:
                    continue
                out = Path(tmp) / f"{key}_{device}"
                _extract(stim[args.cpu_n], out, key, spec, device, args.batch_size, args.threads)  # warm-up
                t0 = time.perf_counter()
                summary = _extract(stim[n], out, key, spec, device, args.batch_size, args.threads)
                result[device] = (n / (time.perf_counter() - t0), summary["seconds"])
                label = next(iter(spec["layers"]))
                with h5py.File(out / f"{label}.h5") as f:
                    result[device + "_rdm"] = compute_rdm(f["activations"][: args.cpu_n])
            layers = ", ".join(f"{v['node']} ({v['reduce']})" for v in spec["layers"].values())
            row = {"what": f"{key} {layers}", "ours": f"cpu {result['cpu'][0]:.1f} img/s (N={args.cpu_n})"}
            if gpu:
                total += result["cuda"][1]
                a, b = result["cuda_rdm"], result["cpu_rdm"]
                row.update(reference=f"cuda {result['cuda'][0]:.1f} img/s, {result['cuda'][1]:.2f} s (N={args.n})",
                           ratio=f"gpu/cpu {result['cuda'][0] / result['cpu'][0]:.1f}x",
                           target=f"max |RDM gpu - cpu| / max = {np.abs(a - b).max() / b.max():.1e}")
            rows.append(row)
    print_table(f"one-pass extraction, GPU N={args.n}, CPU N={args.cpu_n}, batch {args.batch_size}", rows)
    if gpu:
        print(f"total GPU extraction: {total:.2f} s for {len(models)} networks x {args.n} images "
              f"({len(models) * args.n / total:.0f} images/s); goal <= 15 s at N=10,000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
