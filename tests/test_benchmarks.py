"""Every benchmark script runs in its quick mode and prints its result table with a ratio.

Benchmarks are not tests of speed (nothing here checks a time); this only keeps them from
rotting unseen (bench_noop once stopped at the tutorial config's offline data check). Each script
runs as a user runs it, ``python benchmarks/<name>.py --quick``, in a subprocess from the
repository root.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.name for p in (REPO / "benchmarks").glob("bench_*.py"))


def test_every_benchmark_is_listed_in_the_readme():
    readme = (REPO / "benchmarks" / "README.md").read_text()
    missing = [s for s in SCRIPTS if f"benchmarks/{s}" not in readme]
    assert not missing, f"benchmarks/README.md does not list {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_quick_mode_runs(script, tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--quick"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    out = proc.stdout
    assert proc.returncode == 0, f"{script} --quick exited {proc.returncode}:\n{out[-2000:]}\n{proc.stderr[-3000:]}"
    assert "\n== " in out, f"{script} printed no result table:\n{out[-2000:]}"
    # its ratio line: the table's ratio column, or a speed-up such as '3.95x'
    assert re.search(r"\bratio\b|\d\.\d+ ?x\b", out), f"{script} printed no ratio:\n{out[-2000:]}"


def test_the_scripts_are_handed_out_one_by_one_and_other_files_whole():
    from conftest import xdist_unit

    here = "tests/test_benchmarks.py::test_benchmark_quick_mode_runs"
    assert xdist_unit(f"{here}[bench_rdm.py]") != xdist_unit(f"{here}[bench_sweep.py]")
    assert xdist_unit("tests/test_reuse.py::test_a") == xdist_unit("tests/test_reuse.py::test_b[x::y]") == \
        "tests/test_reuse.py"
