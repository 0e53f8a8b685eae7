"""Model sources (issue 19): forward hooks vs torch.fx extraction of the same model, and the DAG
build of a 20-model config mixing sources vs 20 torchvision models.

    python benchmarks/bench_sources.py            # N=256 images, 5 repeats (~5 min on 2 cores)
    python benchmarks/bench_sources.py --quick    # N=64, one repeat (a smoke run)

a) hooks vs fx: ``rsaflow.extract.extract_model`` on one timm ``resnet10t`` (weights none, 3
   layers: layer2 mean, layer4 mean, global_pool), ``layers_by: fx`` vs ``layers_by: modules``
   (forward hooks; the pass stops after the last hooked module from the second batch on), the
   same random uint8 images (N, 3, 32, 32) -> timm's eval transform (176 px). Times are
   ``extract_model``'s own timer (reading, transform, forward, writing HDF5), measured
   interleaved, medians; the activations must agree to 1e-5 relative. Target: hooks <= 1.1 x fx.
b) DAG build: ``snakemake -n`` (a whole process, warm catalog caches: after one build) of 20
   torchvision models vs 20 mixing sources (5 timm, 5 open_clip, 5 python factories and 5
   torchvision; Hugging Face is left out: it needs a saved model), medians interleaved; the
   first (cold) build, which lists the catalogs in subprocesses, for information. Target: mixed
   <= 1.5 x torchvision.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))  # this checkout's rsaflow, not an installed one

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from _common import fmt_s, machine, met, print_table, timeit_interleaved, versions  # noqa: E402

NET = "import torch\nfrom torch import nn\n\ndef build():\n    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1))\n"


def hooks_vs_fx(n: int, repeats: int, work: Path) -> list[dict]:
    import h5py

    from rsaflow.extract import extract_model
    from rsaflow.h5io import write_h5

    rng = np.random.default_rng(0)
    stim = work / "stimuli.h5"
    write_h5(stim, "stimuli", {"images": rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8),
                               "labels": np.arange(n) % 10, "indices": np.arange(n, dtype=np.int64),
                               "class_names": np.array([f"c{i}" for i in range(10)], dtype=object)},
             {"digest": "bench"})
    layers = {"l2": {"node": "layer2", "reduce": "mean"}, "l4": {"node": "layer4", "reduce": "mean"},
              "pool": {"node": "global_pool", "reduce": "flatten"}}
    base = {"model": "m", "source": "timm", "arch": "resnet10t", "weights": "none", "seed": 0, "layers": layers,
            "batch_size": 32, "device": "cpu", "precision": "float32", "channels_last": False}
    seconds = {}

    def runner(mode):
        def run():
            out = work / mode
            summary = extract_model(stim, out, {**base, "layers_by": mode}, 2, {})
            seconds.setdefault(mode, []).append(summary["seconds"])
            with h5py.File(out / "l4.h5") as f:
                return f["activations"][()]
        return run

    results = timeit_interleaved({"fx": runner("fx"), "modules": runner("modules")}, repeats)
    np.testing.assert_allclose(results["modules"][1], results["fx"][1], rtol=1e-5,
                               atol=1e-5 * np.abs(results["fx"][1]).max())
    fx, hooks = (statistics.median(seconds[m][-repeats:]) for m in ("fx", "modules"))
    return [{"what": f"timm resnet10t, 3 layers, N={n}: hooks (ours) vs fx (reference)", "ours": fmt_s(hooks),
             "reference": fmt_s(fx), "ratio": f"{hooks / fx:.2f}x", "target": "<= 1.1x", "met": met(hooks <= 1.1 * fx)}]


def mixed_models(work: Path) -> dict:
    (work / "nets").mkdir(exist_ok=True)
    models = {}
    for i in range(5):
        (work / "nets" / f"net{i}.py").write_text(NET + f"# net {i}\n")
        models[f"py{i}"] = {"source": "python", "arch": f"nets/net{i}.py:build", "layers": {"c": "1"}}
        models[f"timm{i}"] = {"source": "timm", "arch": ["resnet10t", "resnet18", "resnet26", "resnet34",
                                                         "resnet50"][i], "weights": "none",
                              "layers": {"p": "global_pool"}}
        models[f"clip{i}"] = {"source": "open_clip", "arch": "ViT-B-32", "weights": "none", "seed": i,
                              "layers": {"b": {"node": f"transformer.resblocks.{i}", "reduce": "cls"}}}
        models[f"tv{i}"] = {"arch": "resnet18", "weights": "none", "seed": i, "layers": {"p": "avgpool"}}
    return models


def torchvision_models() -> dict:
    archs = ["resnet18", "alexnet", "squeezenet1_1", "mobilenet_v3_small", "resnet34"]
    return {f"tv{i}": {"arch": archs[i % 5], "weights": "none", "seed": i, "layers": {"l": "flatten" if archs[i % 5] != "squeezenet1_1" else "features.12"}}
            for i in range(20)}


def dag_build(repeats: int, work: Path) -> list[dict]:
    configs = {"torchvision": torchvision_models(), "mixed": mixed_models(work)}
    cmds = {}
    for name, models in configs.items():
        cfg = {"stimuli": {"source": "digits", "per_class": 1}, "models": models,
               "extraction": {"device": "cpu", "gpu": False}}
        path = work / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        cmds[name] = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work),
                      "--configfile", str(path), "-n", "-q"]
    cold = {}
    for name, cmd in cmds.items():  # fills the catalog caches
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
        cold[name] = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{name}: snakemake -n failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    times = {name: [] for name in cmds}
    for _ in range(repeats):
        for name, cmd in cmds.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, text=True, cwd=work, check=True)
            times[name].append(time.perf_counter() - t0)
    tv, mixed = (statistics.median(times[n]) for n in ("torchvision", "mixed"))
    return [{"what": "snakemake -n, 20 models: mixed sources (ours) vs 20 torchvision (reference), warm caches",
             "ours": fmt_s(mixed), "reference": fmt_s(tv), "ratio": f"{mixed / tv:.2f}x", "target": "<= 1.5x",
             "met": met(mixed <= 1.5 * tv)},
            {"what": "the same, first build (catalogs listed in subprocesses)", "ours": fmt_s(cold["mixed"]),
             "reference": fmt_s(cold["torchvision"]), "ratio": f"{cold['mixed'] / cold['torchvision']:.2f}x"}]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="N=64, one repeat (a smoke run)")
    parser.add_argument("--cases", default="ab")
    args = parser.parse_args()
    n, repeats = (64, 1) if args.quick else (args.n, args.repeats)
    print(machine())
    print(versions("torch", "torchvision", "timm", "open_clip_torch", "snakemake"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if "a" in args.cases:
            (Path(tmp) / "a").mkdir()
            rows += hooks_vs_fx(n, repeats, Path(tmp) / "a")
        if "b" in args.cases:
            (Path(tmp) / "b").mkdir()
            rows += dag_build(repeats, Path(tmp) / "b")
    print_table(f"model sources (medians of {repeats})", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
