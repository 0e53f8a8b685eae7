"""No-op reruns: how long `snakemake -n` and a real run take when nothing is to do.

Builds the offline demo (workflow/config/demo.yaml) once in a temporary folder, then times, as
whole processes, `snakemake -n` and `snakemake` there (nothing to do), and `snakemake -n` on the
default (tutorial) config (DAG only; its CIFAR10 test split, which the offline path check wants
on disk, is generated in CIFAR10's on-disk format: random pixels, 10 images per class). The reference in the same run
is `snakemake --version` (Snakemake's own start-up, the floor). Target: both no-op runs < 3 s.

Two more rows time the default config's first dry run in a new working directory (no
``.snakemake/``): with torchvision's catalog in the user's cache (``RSAFLOW_CACHE_DIR``, listed by
an earlier run in any directory) and with an empty one (its models listed by a torch subprocess,
as on a machine's first run).

    python benchmarks/bench_noop.py [--repeats 5]
    python benchmarks/bench_noop.py --quick     # 1 repeat, the demo's first model only (a smoke run)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import REPO, fmt_s, machine, met, print_table, run_tree, versions, write_cifar10


def wall(cmd, cwd, env=None, peaks=None) -> float:
    """Seconds of ``cmd`` as a whole process; its peak RSS (MiB, ``os.wait4``: the largest process
    of its tree, the catalog's torch subprocess included) appended to ``peaks``."""
    try:
        seconds, peak, _ = run_tree(cmd, cwd=cwd, env=env)
    except RuntimeError as exc:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{exc}") from None
    if peaks is not None:
        peaks.append(peak)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 repeat, the demo's first model only")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    print(machine())
    print(versions("snakemake"))
    sm = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
    with tempfile.TemporaryDirectory() as work:
        config = REPO / "workflow" / "config" / "demo.yaml"
        if args.quick:  # a smoke run: the demo with its first model only (the build is most of the time)
            import yaml

            demo_config = yaml.safe_load(config.read_text())
            demo_config["models"] = dict(list(demo_config["models"].items())[:1])
            config = Path(work) / "demo_one_model.yaml"
            config.write_text(yaml.safe_dump(demo_config))
        demo = [*sm, "-d", work, "--configfile", str(config)]
        print("building the demo once ...", flush=True)
        subprocess.run([*demo, "--cores", "2", "-q"], check=True, capture_output=True)
        write_cifar10(Path(work) / "tutorial_dag" / "resources" / "cifar10", 10)  # the default stimuli.root
        cmds = {
            "snakemake --version (floor)": [sys.executable, "-m", "snakemake", "--version"],
            "demo: snakemake -n (nothing to do)": [*demo, "-n"],
            "demo: snakemake (nothing to do)": [*demo, "--cores", "2"],
            "default config: snakemake -n": [*sm, "-d", work + "/tutorial_dag", "-n"],
        }
        # the default config's dry run in a new directory (its stimuli.root linked in): the user's catalog
        # cache (filled by the dry run above) or an empty one
        fresh = {"new directory, catalog in the user's cache: snakemake -n": False,
                 "new directory, empty catalog cache: snakemake -n": True}
        times = {name: [] for name in [*cmds, *fresh]}
        peaks = {name: [] for name in fresh}
        for rep in range(repeats):  # interleaved, so machine noise hits all alike
            for name, cmd in cmds.items():
                times[name].append(wall(cmd, work))
            for i, (name, empty) in enumerate(fresh.items()):
                new = Path(work) / f"new_{rep}_{i}"
                (new / "resources").mkdir(parents=True)
                (new / "resources" / "cifar10").symlink_to(Path(work) / "tutorial_dag" / "resources" / "cifar10")
                env = {**os.environ, "RSAFLOW_CACHE_DIR": str(new / "empty-cache")} if empty else None
                times[name].append(wall([*sm, "-d", str(new), "-n"], work, env, peaks[name]))
    floor = statistics.median(times["snakemake --version (floor)"])
    rows = []
    for name, values in times.items():
        med = statistics.median(values)
        is_target = "nothing to do" in name
        rows.append({"what": name, "ours": fmt_s(med), "reference": fmt_s(floor), "ratio": f"{med / floor:.2f}x",
                     "target": "< 3 s" if is_target else None, "met": met(med < 3.0) if is_target else None})
    (cached, empty), (cached_mib, empty_mib) = ([statistics.median(d[name]) for name in fresh] for d in (times, peaks))
    rows.append({"what": "new directory: catalog in the user's cache vs empty", "ours": fmt_s(cached),
                 "reference": fmt_s(empty), "ratio": f"{cached / empty:.2f}x", "target": None, "met": None})
    rows.append({"what": "same, peak RSS (largest process of the dry run)", "ours": f"{cached_mib:.0f} MiB",
                 "reference": f"{empty_mib:.0f} MiB", "ratio": f"{cached_mib / empty_mib:.2f}x", "target": None,
                 "met": None})
    print_table(f"no-op reruns (medians of {repeats}, whole processes)", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
