"""Only the extraction job imports torch: the other jobs start fast (~2 s and 670 MB saved each)."""

import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.parametrize(
    "module",
    ["rsaflow.jobs.stimuli", "rsaflow.jobs.rdm", "rsaflow.jobs.second_order", "rsaflow.jobs.figures",
     "rsaflow.config", "rsaflow.rdm", "rsaflow.compare", "rsaflow.stimuli", "rsaflow.jobs.common"],
)
def test_module_does_not_import_torch(module):
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"
