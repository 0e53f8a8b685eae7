"""Only the extraction imports torch: every other module of the package starts fast (~2 s and
670 MB saved per job). The modules are derived from the source tree, not listed."""

import ast
import json
import subprocess
import sys

from conftest import REPO

PACKAGE = REPO / "src" / "rsaflow"
#: The modules that extract activations, whose job is to import torch: the extraction, its layer
#: selection and checkpoints, and each model source's build module (the source registry itself,
#: rsaflow.sources, is torch-free: the DAG build reads it).
EXTRACTION = {"rsaflow.extract", "rsaflow.layers", "rsaflow.checkpoints",
              *(f"rsaflow.sources.{m}" for m in ("torchvision_models", "timm_models", "hf_models", "clip_models",
                                                  "python_models", "transforms"))}
#: The torch path of the numeric kernels (rdm.backend / second_order.backend: torch), imported only
#: by rsaflow.kernels.select when a job asked for it; the array modules and rsaflow.kernels stay torch-free.
TORCH_KERNELS = {"rsaflow.torch_kernels"}
TORCH = EXTRACTION | TORCH_KERNELS


def _name(path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_at_top(path) -> set[str]:
    """rsaflow modules imported by ``path``'s top-level statements (not inside functions)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def torch_free_modules() -> list[str]:
    """Every module of the package but the torch modules (extraction, torch kernels) and the modules
    importing one at top level."""
    paths = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    return sorted(m for m, p in paths.items() if m not in TORCH and not TORCH & _imports_at_top(p))


def test_the_derived_list_covers_the_jobs_and_the_science():
    found = torch_free_modules()
    assert {"rsaflow.jobs.second_order", "rsaflow.compare", "rsaflow.config", "rsaflow.methods"} <= set(found)
    assert {"rsaflow.rdm", "rsaflow.ranking", "rsaflow.products", "rsaflow.kernels", "rsaflow.jobs.rdm"} <= set(found)
    assert len(found) >= 40 and "rsaflow.extract" not in found and "rsaflow.torch_kernels" not in found


def test_no_module_but_the_extraction_imports_torch():
    """One process imports the modules one by one: the first that brings torch in is named."""
    code = (
        "import importlib, json, sys\n"
        "for m in json.loads(sys.argv[1]):\n"
        "    importlib.import_module(m)\n"
        "    if any(k.split('.')[0] in ('torch', 'torchvision') for k in sys.modules):\n"
        "        print(m); break\n"
    )
    out = subprocess.run([sys.executable, "-c", code, json.dumps(torch_free_modules())], capture_output=True,
                         text=True, check=True, env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == ""
