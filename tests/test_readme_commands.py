"""The README's first command, as a new user runs it: a fresh venv made by its own install line in
a fresh copy of the repository, the demo run, then ``snakemake --report`` with the same config."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO


def readme_run_command() -> str:
    """The README's run command: its line that makes the venv, installs and runs the demo."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("python3 -m venv .venv &&")]
    assert len(lines) == 1, f"expected one install-and-run line in README.md, found {lines}"
    return lines[0]


def fresh_copy(dest):
    """The files git tracks (what a clone has), copied to ``dest``."""
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, text=True,
                           check=True).stdout.split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def test_readme_line_installs_the_package_and_the_report_extra():
    line = readme_run_command()
    assert re.search(r"pip install -e '\.\[[a-z,]*workflow[a-z,]*\]'", line), line
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^workflow = \[.*"snakemake\[reports\]', pyproject, re.M)  # brings pygments


@pytest.mark.slow
@pytest.mark.long
def test_readme_run_then_report_in_a_fresh_venv(tmp_path):
    repo = fresh_copy(tmp_path / "rsaflow")
    run = subprocess.run(["bash", "-c", readme_run_command()], cwd=repo, capture_output=True, text=True,
                         timeout=2400)
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    assert (repo / "results/second_order/main/matrix.tsv").is_file()
    report = subprocess.run([".venv/bin/snakemake", "--configfile", "workflow/config/demo.yaml",
                             "--report", "report.html"], cwd=repo, capture_output=True, text=True, timeout=600)
    assert report.returncode == 0, report.stderr[-3000:]
    html = (repo / "report.html").read_text(encoding="utf-8", errors="replace")
    assert len(html) > 100_000 and "heatmap.png" in html and "stimuli.png" in html
    # the notebook snippets of docs/outputs.md run on this demo run (with this test's interpreter: one
    # line needs rsatoolbox, which the README's install does not bring)
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    for block in re.findall(r"```python\n(.*?)```", (repo / "docs" / "outputs.md").read_text(), re.S):
        snippet = subprocess.run([sys.executable, "-c", block], cwd=repo, capture_output=True, text=True,
                                 timeout=300, env=env)
        assert snippet.returncode == 0, (block, snippet.stderr[-2000:])
