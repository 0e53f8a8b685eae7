"""GPU vs CPU extraction of the default config's models: images/s and the RDMs' agreement.

For the issue's GPU check (run where a CUDA device exists; elsewhere the GPU rows are skipped):
the default config's four networks and layers (untrained, seeded weights: nothing is downloaded),
N generated 32x32 images upscaled by each model's transforms, extracted with rsaflow's own
extraction on ``cuda`` and on ``cpu``; prints images/s for both (model set-up excluded: the second
of two runs is timed) and the largest difference between the two RDMs relative to the largest
distance. Keep well under 10 minutes: the defaults take about 3-5 min on one GPU + 16 cores.

    python benchmarks/bench_gpu.py [--n 300] [--cpu-n 100] [--threads 16]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="stimuli on the GPU")
    parser.add_argument("--cpu-n", type=int, default=100, help="stimuli on the CPU (the first of the GPU's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="alexnet only, 20 images")
    args = parser.parse_args()
    limit_threads(args.threads)
    import h5py
    import torch

    from rsaflow import h5io
    from rsaflow.config import normalise
    from rsaflow.extract import extract_activations
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
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.n, 3, 32, 32), dtype=np.uint8)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        stim = {}
        for n in {args.n, args.cpu_n}:
            stim[n] = Path(tmp) / f"stimuli{n}.h5"
            h5io.write_h5(stim[n], "stimuli", {"images": images[:n], "labels": np.arange(n) % 10,
                                               "indices": np.arange(n), "class_names": np.array(["c"], dtype=object)},
                          {"digest": "bench"})
        for key, spec in models.items():
            label, layer = next(iter(spec["layers"].items()))
            result = {}
            for device, n in (("cuda", args.n), ("cpu", args.cpu_n)):
                if device == "cuda" and not gpu:
                    continue
                s = {"model": key, "arch": spec["arch"], "weights": "none", "seed": 0, "layer": label, **layer,
                     "batch_size": args.batch_size, "device": device, "precision": "float32", "channels_last": True}
                out = Path(tmp) / f"{key}_{device}.h5"
                extract_activations(stim[n], out, s, args.threads, {})  # warm-up: model set-up, cudnn autotune
                t0 = time.perf_counter()
                summary = extract_activations(stim[n], out, s, args.threads, {})
                result[device] = (n / (time.perf_counter() - t0), summary["seconds"])
                with h5py.File(out) as f:
                    result[device + "_rdm"] = compute_rdm(f["activations"][: args.cpu_n])
            row = {"what": f"{key} {layer['node']} ({layer['reduce']})", "ours": f"cpu {result['cpu'][0]:.1f} img/s"}
            if gpu:
                a, b = result["cuda_rdm"], result["cpu_rdm"]
                row.update(reference=f"cuda {result['cuda'][0]:.1f} img/s",
                           ratio=f"gpu/cpu {result['cuda'][0] / result['cpu'][0]:.1f}x",
                           target=f"max |RDM gpu - cpu| / max = {np.abs(a - b).max() / b.max():.1e}")
            rows.append(row)
    print_table(f"extraction, GPU N={args.n}, CPU N={args.cpu_n}, batch {args.batch_size}", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
