"""Layer sweeps: one forward pass per model (issue: one-pass extraction), against a plain one-pass script.

Three parts, each a whole process timed from outside (Python start-up and the torch import count
on both sides), medians of interleaved runs:

1. ``time``: a 16-node ResNet-50 sweep (``--arch resnet50 --pattern layer?.?.relu_2``, flattened; the
   quick mode sweeps 2 nodes of ResNet-18), N generated 32x32 images, CPU, batch 16, untrained
   seeded weights.
   - reference: a plain script, torchvision's ``create_feature_extractor`` with the 16 return
     nodes, the same batches and transforms, each node's output flattened to a numpy array
     (kept in memory, nothing written);
   - ours: ``rsaflow.extract.extract_model`` writing the 16 HDF5 files (data digests included);
   - the workflow: ``snakemake`` running only that model's ``activations`` job (stimuli built
     before), Snakemake's own start-up and DAG included.
2. ``memory``: peak RSS (``/usr/bin/time``-like: ``os.wait4``'s maxrss of the child) of ours at N=200
   and N=2,000, with the sweep reduced by ``mean`` (flattened it would be 44 GB of disk at N=2,000).
3. ``add``: the workflow on the sweep at N images, then a 17th node added: forward passes in the
   second run, and how many RDMs were ``computed`` and ``reused`` (from the job logs).

    python benchmarks/bench_sweep.py [--n 100] [--repeats 3] [--parts time,memory,add] [--arch A] [--pattern P]
                                     [--quick]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from _common import REPO, machine, print_table, run_tree, versions, write_cifar10

PATTERN = "layer?.?.relu_2"  # 16 nodes
ARCH = "resnet50"
QUICK_ARCH, QUICK_PATTERN = "resnet18", "layer4.?.relu_1"  # 2 nodes (a smoke run)

PLAIN = r"""
import sys, time, h5py, numpy as np, torch, torchvision
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names
import fnmatch
torch.set_num_threads(int(sys.argv[3]))
torch.manual_seed(0)
model = torchvision.models.get_model(sys.argv[4], weights=None).eval()
nodes = [n for n in get_graph_node_names(model)[1] if fnmatch.fnmatchcase(n, sys.argv[2])]
extractor = create_feature_extractor(model, return_nodes={n: n for n in nodes}).to(memory_format=torch.channels_last)
transforms = torchvision.models.get_model_weights(sys.argv[4]).DEFAULT.transforms()
images = h5py.File(sys.argv[1])["images"][()]
out = {n: [] for n in nodes}
with torch.inference_mode():
    for lo in range(0, len(images), 16):
        x = transforms(torch.from_numpy(images[lo:lo + 16]).float().div_(255.0)).contiguous(memory_format=torch.channels_last)
        for n, v in extractor(x).items():
            out[n].append(v.reshape(v.shape[0], -1).numpy().copy())
acts = {n: np.concatenate(v) for n, v in out.items()}
print(len(acts), "nodes")
"""

OURS = r"""
import json, sys
from rsaflow.extract import extract_model
spec = json.loads(sys.argv[3])
s = extract_model(sys.argv[1], sys.argv[2], spec, int(sys.argv[4]), {})
print(s["forward_passes"], "forward passes")
"""


def stimuli_file(path: Path, n: int) -> Path:
    from rsaflow import h5io

    images = np.random.default_rng(0).integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    h5io.write_h5(path, "stimuli", {"images": images, "labels": np.arange(n) % 10, "indices": np.arange(n),
                                    "class_names": np.array(["c"], dtype=object)}, {"digest": f"bench{n}"})
    return path


def sweep_spec(arch: str, pattern: str, reduce: str) -> dict:
    from rsaflow.catalog import cache_dir, load_catalog
    from rsaflow.config import layers_spec

    nodes = load_catalog([arch], cache_dir())["nodes"][arch]
    return {"model": arch, "arch": arch, "weights": "none", "seed": 0,
            "layers": layers_spec({"pattern": pattern, "reduce": reduce}, nodes, "layers", arch),
            "batch_size": 16, "device": "cpu", "precision": "float32", "channels_last": True}


def workflow_config(stim_root: Path, n: int, threads: int, arch: str, pattern: str) -> dict:
    layers = {"pattern": pattern}
    return {"stimuli": {"source": "cifar10", "root": str(stim_root), "per_class": n // 10, "seed": 42},
            "models": {arch: {"weights": "none", "layers": layers}},
            "extraction": {"batch_size": 16, "device": "cpu", "threads": threads, "gpu": False}}


def part_time(args, tmp: Path, rows: list) -> None:
    stim = stimuli_file(tmp / "stim.h5", args.n)
    spec = sweep_spec(args.arch, args.pattern, "flatten")
    k = len(spec["layers"])
    plain = [sys.executable, "-c", PLAIN, str(stim), args.pattern, str(args.threads), args.arch]
    ours = [sys.executable, "-c", OURS, str(stim), str(tmp / "ours"), json.dumps(spec), str(args.threads)]
    wf = tmp / "wf"
    wf.mkdir()
    (wf / "config.yaml").write_text(yaml.safe_dump(workflow_config(write_cifar(tmp / "cifar", args.n), args.n,
                                                                   args.threads, args.arch, args.pattern)))
    sm = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(wf), "--configfile",
          str(wf / "config.yaml"), "--cores", str(args.threads)]
    subprocess.run([*sm, "results/stimuli/stimuli.h5"], check=True, capture_output=True)
    times = {"plain": [], "ours": [], "workflow": []}
    for _ in range(args.repeats):
        times["plain"].append(run_tree(plain)[0])
        times["ours"].append(run_tree(ours)[0])
        times["workflow"].append(run_tree([*sm, f"results/activations/{args.arch}", "--forcerun", "activations"])[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    print({k: [round(x, 2) for x in v] for k, v in times.items()})
    rows.append(dict(what=f"{k}-node {args.arch} sweep, N={args.n}, CPU: extract_model process vs plain one-pass "
                          "script",
                     ours=f"{med['ours']:.1f} s", reference=f"{med['plain']:.1f} s",
                     ratio=f"{med['ours'] / med['plain']:.2f}x", target="<= 1.3x",
                     met="yes" if med["ours"] <= 1.3 * med["plain"] else "no"))
    rows.append(dict(what="same, the workflow's activations job (snakemake start-up and DAG included)",
                     ours=f"{med['workflow']:.1f} s", reference=f"{med['plain']:.1f} s",
                     ratio=f"{med['workflow'] / med['plain']:.2f}x", target="<= 1.3x",
                     met="yes" if med["workflow"] <= 1.3 * med["plain"] else "no"))


def part_memory(args, tmp: Path, rows: list) -> None:
    layers = sweep_spec(args.arch, args.pattern, "mean")
    k, spec = len(layers["layers"]), json.dumps(layers)
    peaks = {}
    for n in (args.small_n, args.large_n):
        stim = stimuli_file(tmp / f"stim{n}.h5", n)
        seconds, peaks[n], _ = run_tree([sys.executable, "-c", OURS, str(stim), str(tmp / f"m{n}"), spec,
                                          str(args.threads)])
        print(f"N={n}: {seconds:.1f} s, peak RSS {peaks[n]:.0f} MiB")
    ratio = peaks[args.large_n] / peaks[args.small_n]
    rows.append(dict(what=f"peak RSS of the {k}-node sweep (mean), N={args.large_n} vs N={args.small_n}",
                     ours=f"{peaks[args.large_n]:.0f} MiB", reference=f"{peaks[args.small_n]:.0f} MiB",
                     ratio=f"{ratio:.2f}x", target="<= 1.3x", met="yes" if ratio <= 1.3 else "no"))


def write_cifar(root: Path, n: int) -> Path:
    return write_cifar10(root, n // 10)


def part_add(args, tmp: Path, rows: list) -> None:
    wf = tmp / "add"
    wf.mkdir()
    spec = sweep_spec(args.arch, args.pattern, "flatten")
    nodes = [layer["node"] for layer in spec["layers"].values()]
    config = workflow_config(write_cifar(tmp / "cifar_add", args.n), args.n, args.threads, args.arch, args.pattern)
    sm = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(wf), "--configfile",
          str(wf / "config.yaml"), "--cores", str(args.threads)]
    if args.quick:  # up to the second-order matrix: no figures, export or report
        sm.append("results/second_order/main/matrix.h5")
    seconds = []
    for layers in (nodes, [*nodes, "avgpool"]):
        config["models"][args.arch]["layers"] = {"nodes": layers}
        (wf / "config.yaml").write_text(yaml.safe_dump(config))
        for log in (wf / "results" / "logs").rglob("*.log") if (wf / "results").exists() else []:
            log.unlink()
        t0 = time.perf_counter()
        subprocess.run(sm, check=True, capture_output=True)
        seconds.append(time.perf_counter() - t0)
    # the model's RDM job (one per model) ends its log with "<K> RDMs, <c> computed, <r> reused"
    summary = re.findall(r"(\d+) RDMs, (\d+) computed, (\d+) reused",
                         (wf / f"results/logs/rdm/euclidean/{args.arch}.log").read_text())
    computed, reused = (int(summary[-1][1]), int(summary[-1][2])) if summary else (-1, -1)
    passes = re.findall(rf"done: {args.arch}, .*?(\d+) forward passes",
                        (wf / f"results/logs/activations/{args.arch}.log").read_text())
    print(f"{len(nodes)} nodes: {seconds[0]:.1f} s; +1 node: {seconds[1]:.1f} s, {passes} forward passes, "
          f"{computed} RDM computed, {reused} reused")
    expected = -(-args.n // 16)
    rows.append(dict(what=f"node {len(nodes) + 1} added to the sweep (workflow, N={args.n})",
                     ours=f"1 pass ({passes[0]} batches), {computed} computed, {reused} reused",
                     reference=f"first run {seconds[0]:.1f} s", ratio=f"rerun {seconds[1]:.1f} s",
                     target=f"1 pass, 1 computed, {len(nodes)} reused",
                     met="yes" if (passes == [str(expected)] and computed == 1 and reused == len(nodes)) else "no"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--small-n", type=int, default=200)
    parser.add_argument("--large-n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parts", default="time,memory,add")
    parser.add_argument("--arch", default=ARCH, help="the torchvision architecture swept (default: resnet50)")
    parser.add_argument("--pattern", default=PATTERN, help="the sweep's node pattern (default: 16 nodes)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke run: N=20, {QUICK_ARCH} {QUICK_PATTERN} (2 nodes), memory at 20 vs 60, "
                             "one repeat")
    args = parser.parse_args()
    if args.quick:
        args.n, args.small_n, args.large_n, args.repeats = 20, 20, 60, 1
        args.arch, args.pattern = QUICK_ARCH, QUICK_PATTERN
    print(machine())
    print(versions("torch", "torchvision", "numpy", "h5py"))
    rows: list = []
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.parts.split(","):
            {"time": part_time, "memory": part_memory, "add": part_add}[part](args, Path(tmp), rows)
    print_table("layer sweeps: one pass per model", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
