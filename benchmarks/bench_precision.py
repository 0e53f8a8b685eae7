"""bfloat16 autocast vs float32 extraction: speed and the effect on the RDM.

Runs the same stimuli through one layer at ``precision: float32`` and ``precision: bfloat16``
(extraction.precision), then compares images/s and the RDMs: 1 - Spearman between the two RDMs'
upper triangles, and the largest relative difference of entries. Untrained (seeded) weights, as
nothing can be downloaded here; with trained weights the effect should be measured again.

    python benchmarks/bench_precision.py [--arch resnet50 --node avgpool --n 200 --device cpu]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import fmt_s, limit_threads, machine, print_table, versions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--node", default="avgpool")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="resnet18, 40 images")
    args = parser.parse_args()
    if args.quick:
        args.arch, args.n = "resnet18", 40
    limit_threads(args.threads)
    import h5py
    from scipy.stats import spearmanr

    from rsaflow import h5io
    from rsaflow.extract import extract_model
    from rsaflow.rdm import compute_rdm, upper_triangle

    print(machine())
    print(versions("torch", "torchvision", "numpy"))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.n, 3, 32, 32), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        stim = Path(tmp) / "stimuli.h5"
        h5io.write_h5(stim, "stimuli", {"images": images, "labels": np.arange(args.n) % 10,
                                        "indices": np.arange(args.n), "class_names": np.array(["c"], dtype=object)},
                      {"digest": "bench"})
        out, secs = {}, {}
        for precision in ("float32", "bfloat16"):
            spec = {"model": args.arch, "arch": args.arch, "weights": "none", "seed": 0,
                    "layers": {"l": {"node": args.node, "reduce": "flatten"}}, "batch_size": 16,
                    "device": args.device, "precision": precision, "channels_last": True}
            folder = Path(tmp) / precision
            path = folder / "l.h5"
            t0 = time.perf_counter()
            extract_model(stim, folder, spec, args.threads, {})
            secs[precision] = time.perf_counter() - t0
            with h5py.File(path) as f:
                out[precision] = compute_rdm(f["activations"][()])
    a, b = upper_triangle(out["float32"]), upper_triangle(out["bfloat16"])
    rho = spearmanr(a, b)[0]
    rel = np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-12))
    print_table(f"{args.arch} {args.node}, N={args.n}, {args.device}", [
        {"what": "extraction time (incl. model set-up)", "ours": fmt_s(secs["bfloat16"]),
         "reference": fmt_s(secs["float32"]), "ratio": f"{secs['bfloat16'] / secs['float32']:.2f}x (bf16/fp32)"},
        {"what": "1 - Spearman(RDM fp32, RDM bf16)", "ours": f"{1 - rho:.2e}"},
        {"what": "max relative RDM entry difference", "ours": f"{rel:.2e}"},
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
