"""The library files each rule depends on are derived from the scripts' imports (rsaflow.deps)."""

import ast
import subprocess
import sys

import pytest

from conftest import REPO
from rsaflow.deps import library_files

SRC = REPO / "src"
SCRIPTS = sorted((REPO / "scripts").glob("*.py"))


def names(script):
    return {p.split("/src/rsaflow/", 1)[1] for p in library_files(script, SRC)}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_closure_covers_what_python_loads(script):
    """Import every rsaflow module the script names; all loaded rsaflow files must be in its closure."""
    mods = sorted({n.module for n in ast.walk(ast.parse(script.read_text()))
                   if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("rsaflow")})
    code = ("import sys, importlib\n"
            f"for m in {mods!r}: importlib.import_module(m)\n"
            "print('\\n'.join(sorted(m.__file__ for k, m in sys.modules.items() "
            "if k.split('.')[0] == 'rsaflow' and getattr(m, '__file__', None))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}).stdout.split()
    loaded = {p.split("/src/rsaflow/", 1)[1] for p in out}
    assert loaded <= names(script)


def test_closures_are_specific():
    scripts = REPO / "scripts"
    assert "extract.py" in names(scripts / "activations.py")
    assert "rdm.py" not in names(scripts / "activations.py")  # editing the RDM math keeps activations
    assert "extract.py" not in names(scripts / "rdm.py")
    assert {"rdm.py", "compare.py", "jobs/rdm.py"} <= names(scripts / "rdm.py")
    assert "external.py" not in names(scripts / "rdm.py")  # CSV parsing is the external_rdm rule's
    assert "plots/base.py" not in names(scripts / "export_rsatoolbox.py")
    assert "plots/mds.py" not in names(scripts / "second_order_figure.py")  # one plotting module per figure
    assert "inference.py" in names(scripts / "second_order.py")  # imported inside a function
