"""Only the extraction job imports torch: the other jobs start fast (~2 s and 670 MB saved each)."""

import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.parametrize(
    "module",
    ["rsaflow.jobs.stimuli", "rsaflow.jobs.rdm", "rsaflow.jobs.second_order", "rsaflow.jobs.stimulus_grid",
     "rsaflow.jobs.rdm_figure", "rsaflow.jobs.stimulus_mds_figure", "rsaflow.jobs.second_order_figure",
     "rsaflow.jobs.mds_figure", "rsaflow.jobs.kernel", "rsaflow.jobs.external_rdm", "rsaflow.jobs.export_rsatoolbox",
     "rsaflow.jobs.effective_config", "rsaflow.config", "rsaflow.catalog", "rsaflow.modelspec", "rsaflow.rdm",
     "rsaflow.compare", "rsaflow.stimuli", "rsaflow.jobs.common", "rsaflow.sources"],
)
def test_module_does_not_import_torch(module):
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"
