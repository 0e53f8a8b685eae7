"""envs/*.yaml cannot drift from pyproject.toml: each conda env lists exactly the packages and version
bounds that pyproject.toml gives the rules using it, and covers every package their code imports.

Conda cannot run here, so this is checked on the files: the ``conda:`` directive of each rule in
workflow/rules/*.smk says which env a rule uses; pyproject's ``dependencies`` are every rule's, plus
the optional-dependency groups of RULE_EXTRAS; ``requires-python`` becomes the env's ``python``.
"""

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from rsaflow.deps import library_files

#: Optional-dependency groups of pyproject.toml that a rule needs beyond ``dependencies``.
RULE_EXTRAS = {"activations": {"torch", "models"}}
#: Optional-dependency groups an env gives every rule it serves: the analysis env carries nibabel
#: (``brain``, small) so that brain_rdm reads NIfTI under --use-conda; pip users add rsaflow[brain].
ENV_EXTRAS = {"envs/analysis.yaml": {"brain"}}
#: pip name -> conda-forge name where they differ.
CONDA_NAMES = {"torch": "pytorch", "open_clip_torch": "open-clip-torch"}
#: imported top-level module -> pip name where they differ.
IMPORT_NAMES = {"sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml"}

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def requirement(text: str) -> tuple[str, str]:
    """('numpy', '>=1.24') from a pip or conda requirement; bounds sorted and without spaces."""
    m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*(.*?)\s*", text)
    name, spec = m.group(1).lower(), m.group(2).replace(" ", "")
    return CONDA_NAMES.get(name, name), ",".join(sorted(filter(None, spec.split(","))))


def rule_envs() -> dict[str, str]:
    """rule name -> env file (relative to the repository) from the ``conda:`` directives."""
    found = {}
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        for block in re.split(r"\n(?=rule \w+:)", text):
            m = re.match(r"rule (\w+):", block)
            env = re.search(r"\n    conda:\n\s+\"([^\"]+)\"", block)
            if m and env:
                found[m.group(1)] = str((smk.parent / env.group(1)).resolve().relative_to(REPO))
    return found


def rule_scripts() -> dict[str, Path]:
    found = {}
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule \w+:)", smk.read_text()):
            m = re.match(r"rule (\w+):", block)
            script = re.search(r"\n    script:\n\s+\"([^\"]+)\"", block)
            if m and script:
                found[m.group(1)] = (smk.parent / script.group(1)).resolve()
    return found


def expected_packages(extras: set[str]) -> dict[str, str]:
    reqs = [*PYPROJECT["dependencies"], *(r for e in sorted(extras) for r in PYPROJECT["optional-dependencies"][e])]
    return dict([("python", PYPROJECT["requires-python"].replace(" ", "")), *map(requirement, reqs)])


def env_packages(path: str) -> dict[str, str]:
    deps = yaml.safe_load((REPO / path).read_text())["dependencies"]
    assert all(isinstance(d, str) for d in deps), f"{path}: pip sections are not allowed (list conda packages)"
    packages = dict(map(requirement, deps))
    assert len(packages) == len(deps), f"{path}: a package is listed twice"
    return packages


ENVS = rule_envs()


def test_every_rule_that_runs_code_has_an_env():
    assert set(rule_scripts()) <= set(ENVS), set(rule_scripts()) - set(ENVS)
    assert set(RULE_EXTRAS) <= set(ENVS)
    assert {str(p.relative_to(REPO)) for p in (REPO / "envs").glob("*.yaml")} == set(ENVS.values())


@pytest.mark.parametrize("env", sorted(set(ENVS.values())))
def test_env_lists_what_pyproject_gives_its_rules(env):
    rules = sorted(r for r, e in ENVS.items() if e == env)
    needs = {frozenset(RULE_EXTRAS.get(r, ())) for r in rules}
    assert len(needs) == 1, f"{env} serves rules with different needs: {rules}"
    assert env_packages(env) == expected_packages(set(next(iter(needs))) | ENV_EXTRAS.get(env, set())), (
        f"{env} (rules {', '.join(rules)}) differs from pyproject.toml")


def optional_imports(tree) -> set[int]:
    """ids of import nodes inside ``try: ... except ImportError`` (optional, with their own message)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers):
            found |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return found


def imported_distributions(path: Path) -> set[str]:
    """pip names of the third-party packages ``path`` imports (anywhere in the file, optional imports aside)."""
    names = set()
    tree = ast.parse(path.read_text())
    optional = optional_imports(tree)
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    third = names - set(sys.stdlib_module_names) - {"rsaflow", "snakemake", "__future__"}
    return {IMPORT_NAMES.get(n, n).lower() for n in third}


@pytest.mark.parametrize("rule", sorted(rule_scripts()))
def test_env_covers_what_the_rule_imports(rule):
    """So RULE_EXTRAS cannot be wrong: every package a rule's script and library files import is in its env."""
    script = rule_scripts()[rule]
    files = [script, *map(Path, library_files(script, REPO / "src"))]
    needed = {CONDA_NAMES.get(n, n) for f in files for n in imported_distributions(f)}
    missing = needed - set(env_packages(ENVS[rule]))
    assert not missing, f"rule {rule} imports {sorted(missing)}, which {ENVS[rule]} does not list"


@pytest.mark.parametrize("rule", sorted(rule_scripts()))
def test_env_has_what_the_rule_imports_optionally(rule):
    """An import behind ``except ImportError`` (nibabel for NIfTI inputs) still runs under --use-conda:
    the rule's env lists it, so the conda run of a NIfTI region does not stop at the import."""
    script = rule_scripts()[rule]
    names = set()
    for f in [script, *map(Path, library_files(script, REPO / "src"))]:
        tree = ast.parse(f.read_text())
        optional = optional_imports(tree)
        for node in ast.walk(tree):
            if id(node) in optional and isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif id(node) in optional and isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    # the extras that ENV_EXTRAS puts into envs (not yet: torchvision for stimuli.download, which stops
    # with a one-line message under --use-conda; rsatoolbox, the test extra's optional export reference)
    known = {requirement(r)[0] for extras in ENV_EXTRAS.values() for name in extras
             for r in PYPROJECT["optional-dependencies"][name]}
    needed = {CONDA_NAMES.get(n, n) for n in (IMPORT_NAMES.get(m, m).lower() for m in names)} & known
    missing = needed - set(env_packages(ENVS[rule]))
    assert not missing, f"rule {rule} imports {sorted(missing)} (optionally), which {ENVS[rule]} does not list"
