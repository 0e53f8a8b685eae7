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
    """Every name the package, the scripts and the rules refer to (code, not docstrings; a function a
    registry entry names as ``"rsaflow.module:function"``, e.g. Method.pair, is referred to)."""
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
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):  # a registry's "module:function"
                names.update(re.findall(r"^rsaflow(?:\.\w+)+:(\w+)$", node.value))
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


MAX_MODULE_LINES = 400
#: Being split by their own changes: the figures (numeric embedding code out of the plotting module)
#: and the extraction (model sources, issue 21's next issues).
LONG_MODULES = {"figures.py", "extract.py"}


def test_no_module_is_longer_than_400_lines():
    long = [f"{p.relative_to(PACKAGE)} ({n} lines)" for p in sorted(PACKAGE.rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
            and str(p.relative_to(PACKAGE)) not in LONG_MODULES]
    assert not long, long


def _module_imports() -> dict[str, set[str]]:
    """Module -> the rsaflow modules it imports (anywhere in it), and (module, private name) imports."""
    out = {}
    for p, tree in _trees().items():
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found = set()
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("rsaflow"):
                found.add(n.module)
                found |= {f"{n.module}.{a.name}" for a in n.names}
            elif isinstance(n, ast.Import):
                found |= {a.name for a in n.names if a.name.startswith("rsaflow")}
        out[name] = found
    return out


def test_no_private_name_is_imported_from_another_module():
    private = [f"{p.relative_to(PACKAGE)}: {n.module}.{a.name}" for p, tree in _trees().items() for n in ast.walk(tree)
               if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("rsaflow")
               for a in n.names if a.name.startswith("_")]
    assert not private, private


def test_no_import_cycle():
    imports = _module_imports()
    graph = {m: {i for i in deps if i in imports and i != m} for m, deps in imports.items()}

    def cycle_from(start):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start and not start.startswith(nxt + "."):
                    return path + [nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        return None

    # a package and its own submodules are not a cycle (importing rsaflow.a.b runs rsaflow.a first)
    cycles = [c for m in graph if (c := cycle_from(m)) and not any(x.startswith(m + ".") or m.startswith(x + ".")
                                                                 for x in c[1:-1])]
    assert not cycles, cycles[:3]


def test_the_dag_build_imports_no_job_module():
    """What workflow/rules/common.smk imports (and what that imports) holds no job module and no
    second-order engine beyond its tile membership."""
    text = (REPO / "workflow/rules/common.smk").read_text()
    todo = set(re.findall(r"^from (rsaflow[\w.]*) import", text, re.M))
    todo |= {f"rsaflow.{m.strip()}" for line in re.findall(r"^from rsaflow import ([\w, ]+)", text, re.M)
             for m in line.split(",")}
    imports, seen = _module_imports(), set()
    while todo:
        m = todo.pop()
        if m in seen or m not in imports:
            continue
        seen.add(m)
        todo |= imports[m]
    assert not [m for m in seen if m.startswith("rsaflow.jobs")], sorted(seen)
    assert not seen & {"rsaflow.second_order.blocks", "rsaflow.inference", "rsaflow.measures"}, sorted(seen)
