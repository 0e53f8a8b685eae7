"""Structure targets of the package (issue 13): short functions, and no public API that only tests use."""

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "rsaflow"
MAX_LINES = 60


def _trees() -> dict[Path, ast.Module]:
    return {p: ast.parse(p.read_text(), filename=str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def test_no_function_is_longer_than_60_lines():
    long = [f"{p.relative_to(REPO)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
            for p, tree in _trees().items() for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > MAX_LINES]
    assert not long, long


def _used_names() -> set[str]:
    """Every name the package, the scripts and the rules refer to (code, not docstrings)."""
    names: set[str] = set()
    sources = [*PACKAGE.rglob("*.py"), *(REPO / "scripts").glob("*.py")]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.alias):
                names.add(node.name.split(".")[-1])
    for path in [REPO / "Snakefile", *(REPO / "workflow").rglob("*.smk")]:
        names |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", path.read_text()))
    return names


def test_every_public_function_is_used_by_the_package_the_scripts_or_the_rules():
    used = _used_names()
    unused = [f"{p.relative_to(PACKAGE)}: {n.name}" for p, tree in _trees().items() for n in tree.body
              if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")
              and n.name not in used]
    # Public by design: the notebook API docs/outputs.md shows (rsaflow.results, rsaflow.rdm and
    # rsaflow.measures on arrays, named there as <module>.<function>), and the CLI's entry point.
    readme = (REPO / "docs" / "outputs.md").read_text()
    documented = {u for u in unused if f"{Path(u.split(': ')[0]).stem}.{u.split(': ')[1]}" in readme}
    assert sorted(set(unused) - documented - {"cli.py: main"}) == []
