"""Dry run of a folder of many images: the content digest (with its cache) against the old
(path, size, mtime) digest, whole `snakemake -n` processes on the same folder and config.

The reference is the same workflow at another commit (``--ref``, default the commit before the
content digest landed), unpacked with ``git archive`` into a temporary folder, so both runs build
the same DAG and differ only in how the images are tracked. Target (issue 23): the dry run at
10,000 images within 1.5x of the reference's, with the per-file sha256 cache warm (the first
dry run after images change reads them; that one is timed too, once).

    python benchmarks/bench_stimulus_digest.py [--images 10000] [--repeats 5] [--ref 92eebdb]
    python benchmarks/bench_stimulus_digest.py --quick      # 500 images, one repeat (a smoke run)
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from _common import REPO, fmt_s, machine, print_grid, versions
from bench_noop import wall

CONFIG = """stimuli: {{source: folder, root: {root}, per_class: null, seed: 0}}
models: {{resnet18: {{weights: none, layers: {{avgpool: avgpool}}}}}}
extraction: {{device: cpu, gpu: false}}
"""


def write_images(root: Path, n: int, classes: int = 10) -> None:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    for i in range(n):
        folder = root / f"class{i % classes:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        buf.seek(0)
        buf.truncate()
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buf, format="PNG")
        (folder / f"img{i:06d}.png").write_bytes(buf.getvalue())


def unpack(rev: str, dest: Path) -> Path:
    data = subprocess.run(["git", "-C", str(REPO), "archive", rev], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def dry_run(snakefile: Path, work: Path, config: Path) -> float:
    """Seconds of one ``snakemake -n`` (each Snakefile imports its own src/ first: common.smk)."""
    return wall([sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(work), "--configfile",
                 str(config), "-n", "-q"], work.parent)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ref", default="92eebdb", help="the reference commit (default: before the content digest)")
    parser.add_argument("--quick", action="store_true", help="500 images, one repeat (a smoke run)")
    args = parser.parse_args()
    n, repeats = (500, 1) if args.quick else (args.images, args.repeats)
    print(machine())
    print(versions("snakemake"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_images(tmp / "img", n)
        ref = unpack(args.ref, tmp / "ref")
        config = tmp / "config.yaml"
        config.write_text(CONFIG.format(root=tmp / "img"))
        works = {"reference (path, size, mtime)": (ref / "Snakefile", tmp / "w_ref"),
                 "content digest (cache warm)": (REPO / "Snakefile", tmp / "w_new")}
        cold = dry_run(REPO / "Snakefile", tmp / "w_new", config)  # first: hashes every image
        dry_run(ref / "Snakefile", tmp / "w_ref", config)  # warm-up (model catalog) for the reference
        times = {name: [] for name in works}
        for _ in range(repeats):  # interleaved: machine noise hits both alike
            for name, (snakefile, work) in works.items():
                times[name].append(dry_run(snakefile, work, config))
    ref_med = statistics.median(times["reference (path, size, mtime)"])
    rows = [[name, fmt_s(statistics.median(v)), fmt_s(min(v)), fmt_s(max(v)),
             f"{statistics.median(v) / ref_med:.2f}x"] for name, v in times.items()]
    rows.append(["content digest, first run (cold: reads every image)", fmt_s(cold), "", "", f"{cold / ref_med:.2f}x"])
    print_grid(f"dry run (snakemake -n) of {n} images, {repeats} runs each", ["digest", "median", "min", "max", "ratio"],
               rows)
    ratio = statistics.median(times["content digest (cache warm)"]) / ref_med
    print(f"ratio content/reference {ratio:.2f}x (target <= 1.5x): {'met' if ratio <= 1.5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
