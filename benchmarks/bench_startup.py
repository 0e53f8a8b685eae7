"""The tutorial's analysis cold: the whole workflow against the same analysis written as one plain script.

The analysis: the default config's four networks and penultimate layers (AlexNet classifier.5,
ResNet-50 avgpool, VGG11 classifier.4, ViT-B/16 class token; ``--models`` takes a subset, and
``--quick`` is a smoke run of AlexNet alone), UNTRAINED (seeded; nothing is downloaded), on 100
images of a generated CIFAR10 test split in torchvision's on-disk format (10 per class,
``random.seed(42)`` shuffle), CPU.

- reference: one Python process doing what a notebook does: read the pickles, select, every
  network's forward pass over the 100 images, Euclidean RDMs, 1 - Spearman between every pair,
  and two figures (the RDMs, an MDS of the second order) written as PNG;
- ours: ``snakemake --cores 2`` in an empty working directory (cold: no results, no catalog
  cache), which does all that plus the stimulus grid, the stimulus MDS, the rsatoolbox export
  and PDFs of every figure.

Both are timed as whole processes (start-up and imports included), medians of interleaved runs.

    python benchmarks/bench_startup.py [--repeats 3] [--models alexnet,resnet50,vgg11,vit_b_16] [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import REPO, machine, print_table, versions, write_cifar10

MODELS = ["alexnet", "resnet50", "vgg11", "vit_b_16"]

SCRIPT = r"""
import pickle, random, sys
import numpy as np, torch, torchvision
from scipy.stats import spearmanr
from torchvision.models.feature_extraction import create_feature_extractor
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sklearn.manifold import MDS

root, out, threads, wanted = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(",")
torch.set_num_threads(threads)
with open(f"{root}/cifar-10-batches-py/test_batch", "rb") as fh:
    batch = pickle.load(fh, encoding="latin1")
labels = np.array(batch["labels"])
order = list(range(len(labels)))
random.seed(42)
random.shuffle(order)
chosen = [i for c in range(10) for i in [j for j in order if labels[j] == c][:10]]
images = torch.from_numpy(batch["data"][chosen].reshape(-1, 3, 32, 32)).float() / 255.0
nets = {"alexnet": ("classifier.5", None), "resnet50": ("avgpool", None), "vgg11": ("classifier.4", None),
        "vit_b_16": ("encoder.ln", "cls")}
nets = {arch: nets[arch] for arch in wanted}
rdms = {}
for arch, (node, how) in nets.items():
    torch.manual_seed(0)
    model = torchvision.models.get_model(arch, weights=None).eval()
    x = torchvision.models.get_model_weights(arch).DEFAULT.transforms()(images)
    with torch.inference_mode():
        a = create_feature_extractor(model, {node: "o"})(x)["o"]
    a = (a[:, 0] if how == "cls" else a.reshape(len(a), -1)).double()
    d2 = (a * a).sum(1)[:, None] + (a * a).sum(1)[None] - 2 * a @ a.T
    rdms[arch] = torch.sqrt(d2.clamp(min=0) / a.shape[1]).numpy()
names = list(rdms)
iu = np.triu_indices(100, 1)
second = np.array([[0 if a == b else 1 - spearmanr(rdms[a][iu], rdms[b][iu])[0] for b in names] for a in names])
fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 4), squeeze=False)
for ax, name in zip(axes[0], names):
    ax.imshow(rdms[name]); ax.set_title(name)
fig.savefig(f"{out}/rdms.png")
xy = MDS(n_components=2, metric=True, dissimilarity="precomputed", random_state=0, n_init=4,
         init="random").fit_transform(second)
fig, ax = plt.subplots()
ax.scatter(xy[:, 0], xy[:, 1])
fig.savefig(f"{out}/mds.png")
print(second.round(3))
"""


def config(cifar: Path, threads: int, models: list[str]) -> dict:
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    base["models"] = {name: base["models"][name] for name in models}
    for spec in base["models"].values():
        spec["weights"] = "none"
    base["stimuli"]["root"] = str(cifar)
    base["extraction"] = {**base.get("extraction", {}), "device": "cpu", "threads": threads}
    return base


def timed(cmd) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default=",".join(MODELS), help="a subset of the config's four networks")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: one repeat, alexnet only (the workflow's fixed cost then dominates)")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.models = 1, "alexnet"
    models = args.models.split(",")
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"--models: {unknown} not among {MODELS}")
    print(machine())
    print(versions("torch", "torchvision", "numpy", "snakemake"))
    times = {"script": [], "workflow": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cifar = write_cifar10(tmp / "cifar", per_class=20)
        (tmp / "config.yaml").write_text(yaml.safe_dump(config(cifar, args.threads, models)))
        for i in range(args.repeats):
            out = tmp / f"script{i}"
            out.mkdir()
            times["script"].append(timed([sys.executable, "-c", SCRIPT, str(cifar), str(out), str(args.threads),
                                           args.models]))
            work = tmp / f"work{i}"
            times["workflow"].append(timed([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d",
                                            str(work), "--configfile", str(tmp / "config.yaml"), "--cores",
                                            str(args.threads)]))
            shutil.rmtree(work)
    print({k: [round(v, 1) for v in vs] for k, vs in times.items()})
    ours, ref = statistics.median(times["workflow"]), statistics.median(times["script"])
    print_table(f"the tutorial's analysis cold ({len(models)} untrained networks, 100 images, CPU)", [dict(
        what="snakemake cold vs one plain script", ours=f"{ours:.1f} s", reference=f"{ref:.1f} s",
        ratio=f"{ours / ref:.2f}x", target="<= 1.3x (the four networks)",
        met="yes" if ours <= 1.3 * ref else "no" if models == MODELS else "n/a: a subset")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
