"""Figures at scale: seconds and peak RSS of every figure job on generated analyses.

Cases (the targets of issue 11 item 7: every figure job <= 60 s on 2 cores):

- ``files``: N=3,000 stimuli, K=41 RDMs (one network layer + 40 external RDMs), written as real
  workflow files (``write_rdm_file``, the stimuli and second-order layouts) and drawn through the
  job functions of the figure rules' modules in :mod:`rsaflow.jobs`, i.e. with the workflow's readers.
- ``arrays``: N=1,000, K=1,000 RDMs (40 models x 24 layers + 40 externals). Writing 1,000 RDM files
  (24 GB today) is not reasonable on a shared disk, so the RDM figures get records whose ``load``
  generates the RDM (what ``read_rdm`` returns), and the second-order figures read a real
  second-order file.

Each figure runs in a fresh child process (``multiprocessing``, spawn), so its peak RSS (VmHWM from
/proc) is its own; the generation of the inputs is not timed. Reference for the old code: the
iterative sklearn MDS of one N=3,000 RDM (the old first-order MDS ran one per RDM) with
``--reference``.

Also renders the figures at small K for looking at them: ``--look DIR`` writes K = 4, 12, 25 and 60.

    python benchmarks/bench_figures.py [--quick] [--threads 2] [--look /tmp/figs] [--reference]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's rsaflow first

import _common  # noqa: E402
import numpy as np  # noqa: E402

LAYERS = ["features.0", "features.2", "features.5", "features.7", "features.9", "features.12", "avgpool",
          "classifier.1", "classifier.2", "classifier.4", "classifier.5", "classifier.6"]
BRAIN = ["V1", "V2", "V4", "IT", "hIT", "EVC", "LOC", "FFA"]


def design(n_models: int, n_layers: int, n_external: int) -> list[dict]:
    """Records (label, model, depth) of a sweep: models x layers (depth = node index) + externals."""
    names = ["alexnet", "resnet18", "vgg16", "squeezenet", "convnext", "vit_b_16", "mobilenet", "densenet"]
    records = []
    for m in range(n_models):
        model = names[m] if m < len(names) else f"model{m:03d}"
        for d in range(n_layers):
            layer = LAYERS[d] if n_layers <= len(LAYERS) else f"block{d}.relu"
            records.append({"label": f"{model}/{layer}", "model": model, "depth": 3 * d + 1, "layer": layer})
    for e in range(n_external):
        name = BRAIN[e] if n_external <= len(BRAIN) else f"roi{e:03d}"
        records.append({"label": f"external/{name}", "model": "external", "depth": -1, "layer": name})
    for i, r in enumerate(records):
        r["seed"] = i
    return records


def stimulus_labels(n: int, n_classes: int = 10) -> np.ndarray:
    """Class labels in stored order (class by class, as the stimuli job writes them)."""
    return np.sort(np.arange(n) % n_classes)


def synthetic_rdm(record: dict, labels: np.ndarray) -> np.ndarray:
    """Euclidean RDM of generated patterns whose class structure grows with depth."""
    from scipy.spatial.distance import pdist, squareform

    rng = np.random.default_rng(record["seed"])
    strength = 0.3 + 0.1 * max(record["depth"], 8) if record["model"] != "external" else 1.5
    means = np.random.default_rng(7).normal(size=(labels.max() + 1, 16))
    x = strength * means[labels] + rng.normal(size=(labels.size, 16))
    return squareform(pdist(x)) / 4.0


def synthetic_second_order(records: list[dict], seed: int = 0) -> dict:
    """A second-order result (rows sorted by label, as written) from latent random walks per model."""
    rng = np.random.default_rng(seed)
    rows = sorted(records, key=lambda r: r["label"])
    start = {}
    pos = []
    for r in rows:
        base = start.setdefault(r["model"], rng.normal(size=6))
        pos.append(base + 0.15 * r["depth"] * np.ones(6) / 6 + 0.2 * rng.normal(size=6) if r["model"] != "external"
                   else rng.normal(size=6) * 0.8 + 1.0)
    pos = np.array(pos)
    d = np.sqrt(((pos[:, None] - pos[None]) ** 2).sum(-1))
    matrix = d / d.max() * 1.1
    k = len(rows)
    lo, hi = np.clip(matrix - 0.05, 0, None), matrix + 0.05
    p = np.clip(matrix / 2, 0, 1)
    return {"matrix": matrix, "labels": [r["label"] for r in rows], "models": [r["model"] for r in rows],
            "depth": np.array([r["depth"] for r in rows]), "method": "spearman",
            "ci_lower": lo, "ci_upper": hi, "p_values": p, "boot_std": np.full((k, k), 0.02)}


LOOK = {4: (2, 1, 2), 12: (2, 5, 2), 25: (3, 7, 4), 60: (5, 11, 5)}


def look(folder: Path, n: int = 200) -> None:
    """Render every figure at K = 4, 12, 25 and 60 (generated data) into ``folder`` for inspection."""
    from rsaflow.plots import mds, second_order, stimuli

    folder.mkdir(parents=True, exist_ok=True)
    labels = stimulus_labels(n)
    names = [f"class{c}" for c in range(10)]
    images = np.random.default_rng(0).integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    stimuli.stimulus_grid(images, labels, names, folder / "stimuli.png")
    for k, shape in LOOK.items():
        records = design(*shape)
        assert len(records) == k, (k, len(records))
        load = lambda r: synthetic_rdm(r, labels)  # noqa: E731
        stimuli.rdm_panel(records, labels, names, folder / f"rdms_k{k}.png", load=load)
        stimuli.stimulus_mds_panel(records, labels, names, folder / f"stimulus_mds_k{k}.png", load=load)
        result = synthetic_second_order(records)
        second_order.second_order_heatmap(result, folder / f"heatmap_k{k}.png")
        mds.mds_plot(result, 0, folder / f"mds_k{k}.png")
    print(f"figures written to {folder}")


# --- timing ---------------------------------------------------------------------------------------

def _vmhwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(task, queue) -> None:
    """Run one figure in a fresh process; report (seconds, peak RSS in MB)."""
    _common.limit_threads(task["threads"])
    t0 = time.perf_counter()
    task["run"](*task["args"])
    queue.put((time.perf_counter() - t0, _vmhwm_mb()))


def measure(run, *args, threads: int = 2) -> tuple[float, float]:
    """Seconds and peak RSS (MB, VmHWM) of ``run(*args)`` in a spawned child process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=({"run": run, "args": args, "threads": threads}, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def write_inputs(folder: Path, n: int, records: list[dict]) -> tuple[list[Path], Path, Path]:
    """Real workflow files: stimuli, one RDM file per record (the workflow's writer), a second-order file."""
    from rsaflow import h5io
    from rsaflow.jobs.per_layer import write_rdm_file

    labels = stimulus_labels(n)
    images = np.random.default_rng(0).integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    h5io.write_h5(folder / "stimuli.h5", "stimuli", {"images": images, "labels": labels, "indices": np.arange(n),
                  "class_names": np.array([f"class{c}" for c in range(10)], dtype=object)}, {"digest": "bench"})
    paths = []
    for r in records:
        paths.append(folder / f"rdm{r['seed']:04d}.h5")
        write_rdm_file(paths[-1], synthetic_rdm(r, labels), {"model": r["model"], "layer": r["layer"],
                       "node_index": r["depth"], "stimulus_digest": "bench"}, "generated")
    return paths, folder / "stimuli.h5", write_second_order(folder / "matrix.h5", records)


def write_second_order(path: Path, records: list[dict]) -> Path:
    from rsaflow import h5io

    res = synthetic_second_order(records)
    data = {k: v for k, v in res.items() if k != "method"}
    data["labels"] = np.array(res["labels"], dtype=object)
    data["models"] = np.array(res["models"], dtype=object)
    h5io.write_h5(path, "second_order", data, {"method": res["method"]})
    return path


def _array_rdm_figure(kind: str, n: int, shape: tuple, out: str) -> None:
    """RDM figures at K = prod(shape) without files: ``load`` generates what read_rdm would return."""
    from rsaflow.plots import stimuli

    labels = stimulus_labels(n)
    draw = stimuli.rdm_panel if kind == "rdms" else stimuli.stimulus_mds_panel
    draw(design(*shape), labels, [f"class{c}" for c in range(10)], out, load=lambda r: synthetic_rdm(r, labels))


def _figure_jobs():
    """The figure rules' job functions (one module per rule under rsaflow.jobs)."""
    from types import SimpleNamespace

    from rsaflow.jobs.mds_figure import draw_mds
    from rsaflow.jobs.rdm_figure import draw_rdms
    from rsaflow.jobs.second_order_figure import draw_second_order
    from rsaflow.jobs.stimulus_grid import draw_stimulus_grid
    from rsaflow.jobs.stimulus_mds_figure import draw_stimulus_mds

    return SimpleNamespace(draw_mds=draw_mds, draw_rdms=draw_rdms, draw_second_order=draw_second_order,
                           draw_stimulus_grid=draw_stimulus_grid, draw_stimulus_mds=draw_stimulus_mds)


def run_files(folder: Path, n: int, shape: tuple, threads: int) -> list[dict]:
    """Every figure job through the figure rules' jobs modules on real files."""
    jobs = _figure_jobs()

    t0 = time.perf_counter()
    paths, stimuli, matrix = write_inputs(folder, n, design(*shape))
    size = sum(p.stat().st_size for p in paths) / len(paths) / 2**20
    print(f"inputs: N={n}, K={len(paths)} RDM files ({size:.0f} MiB each) written in {time.perf_counter() - t0:.0f} s")
    jobs_ = {"stimulus_grid": (jobs.draw_stimulus_grid, stimuli), "rdm_figure": (jobs.draw_rdms, paths, stimuli),
             "stimulus_mds_figure": (jobs.draw_stimulus_mds, paths, stimuli),
             "second_order_figure": (jobs.draw_second_order, matrix), "mds_figure": (jobs.draw_mds, matrix)}
    rows = []
    for name, (fn, *args) in jobs_.items():
        extra = (0,) if name == "mds_figure" else ()
        sec, rss = measure(fn, *args, str(folder / f"{name}.png"), *extra, threads=threads)
        rows.append({"case": f"files N={n} K={len(paths)}", "figure": name, "s": sec, "rss": rss})
        print(f"  {rows[-1]['case']}: {name} {sec:.1f} s, peak RSS {rss:.0f} MB", flush=True)
    return rows


def run_arrays(folder: Path, n: int, shape: tuple, threads: int) -> list[dict]:
    """RDM figures with generated RDMs (no files), second-order figures from a real K x K file."""
    jobs = _figure_jobs()

    k = len(design(*shape))
    matrix = write_second_order(folder / "matrix_arrays.h5", design(*shape))
    rows = []
    for name, run, args in [("rdm_figure", _array_rdm_figure, ("rdms", n, shape)),
                            ("stimulus_mds_figure", _array_rdm_figure, ("mds", n, shape)),
                            ("second_order_figure", jobs.draw_second_order, (matrix,)),
                            ("mds_figure", jobs.draw_mds, (matrix,))]:
        extra = (0,) if name == "mds_figure" else ()
        sec, rss = measure(run, *args, str(folder / f"{name}_arrays.png"), *extra, threads=threads)
        rows.append({"case": f"arrays N={n} K={k}", "figure": name, "s": sec, "rss": rss})
        print(f"  {rows[-1]['case']}: {name} {sec:.1f} s, peak RSS {rss:.0f} MB", flush=True)
    return rows


def reference(n: int, threads: int) -> None:
    """The old first-order MDS (sklearn SMACOF, 4 random starts) vs classical MDS on one RDM of N stimuli."""
    from sklearn.manifold import MDS

    from rsaflow.figure_data import classical_mds

    _common.limit_threads(threads)
    rdm = synthetic_rdm(design(1, 1, 0)[0], stimulus_labels(n))
    t_new, _ = _common.timeit(lambda: classical_mds(rdm), repeats=3)
    t_old, _ = _common.timeit(lambda: MDS(n_components=2, metric="precomputed", metric_mds=True, init="random",
                                          n_init=4, random_state=0).fit_transform(rdm), repeats=1, warmup=0)
    print(f"\nfirst-order MDS of one RDM, N={n}: old sklearn SMACOF {_common.fmt_s(t_old)}, classical "
          f"{_common.fmt_s(t_new)} ({t_old / t_new:.0f}x); the old figure ran one per RDM, all N stimuli")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--look", type=Path, help="also render K = 4, 12, 25, 60 into this folder")
    ap.add_argument("--reference-n", type=int, default=None,
                    help="N of the old-vs-new MDS comparison (default 1000, 200 with --quick; 0: skip)")
    args = ap.parse_args()
    print(_common.machine(), "|", _common.versions("numpy", "scipy", "matplotlib", "scikit-learn", "h5py"))
    files_n, files_shape = (600, (1, 1, 40)) if args.quick else (3000, (1, 1, 40))
    arrays_n, arrays_shape = (300, (8, 24, 8)) if args.quick else (1000, (40, 24, 40))
    with tempfile.TemporaryDirectory(prefix="bench_figures_") as tmp:
        rows = run_files(Path(tmp), files_n, files_shape, args.threads)
        rows += run_arrays(Path(tmp), arrays_n, arrays_shape, args.threads)
    _common.print_table("figure jobs (target: each <= 60 s on 2 cores)", [
        {"what": f"{r['case']}: {r['figure']}", "ours": f"{r['s']:.1f} s, peak RSS {r['rss']:.0f} MB",
         "target": "<= 60 s", "met": _common.met(r["s"] <= 60)} for r in rows])
    reference_n = args.reference_n if args.reference_n is not None else (200 if args.quick else 1000)
    if reference_n:
        reference(reference_n, args.threads)
    if args.look:
        look(args.look)


if __name__ == "__main__":
    main()
