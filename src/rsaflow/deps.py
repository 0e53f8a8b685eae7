"""Which library files a workflow script runs: the closure of its ``rsaflow`` imports.

Snakemake does not notice edits to modules that a script imports, so each rule takes these files
as inputs. They are derived from the source (``ast``, nothing is imported), imports inside
functions included (and the registry's lazy ones: a module that calls ``.pair_function`` imports
the modules its entries name), so the lists cannot drift from the code: editing a module reruns exactly the
rules whose scripts reach it. Pure standard library.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path


#: A function the registry names as a string (Method.pair), imported on first use by
#: Method.pair_function: each module that calls that imports every module so named.
REGISTRY, LAZY_CALL = "rsaflow.methods", "pair_function"
LAZY = re.compile(r"^rsaflow(?:\.\w+)+:\w+$")


def _module_file(module: str, src: Path) -> Path | None:
    """src/rsaflow/a/b.py or src/rsaflow/a/b/__init__.py for ``rsaflow.a.b``; None if neither."""
    base = src.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported_modules(path: Path, src: Path) -> set[str]:
    """``rsaflow`` modules imported anywhere in ``path`` (``from rsaflow import x`` counts x if a module).

    Each file is parsed once per process and version (the DAG build asks for every rule's closure,
    and most files are in many: for the demo 62 parses instead of 185, half the DAG-time cost of code digests)."""
    st = path.stat()
    return set(_parsed_imports(path, src, st.st_mtime_ns, st.st_size))


@lru_cache(maxsize=None)
def _parsed_imports(path: Path, src: Path, mtime_ns: int, size: int) -> frozenset[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "rsaflow"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "rsaflow":
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if _module_file(f"{node.module}.{a.name}", src)}
        elif isinstance(node, ast.Attribute) and node.attr == LAZY_CALL:
            found |= _lazy_modules(src)
    return frozenset(found)


def _lazy_modules(src: Path) -> frozenset[str]:
    """The modules the registry names as ``"rsaflow.module:function"`` (:data:`LAZY`)."""
    path = _module_file(REGISTRY, src)
    tree = ast.parse(path.read_text(), filename=str(path))
    return frozenset(node.value.split(":")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.Constant) and isinstance(node.value, str) and LAZY.match(node.value))


@lru_cache(maxsize=None)
def library_files(script: Path, src: Path) -> tuple[str, ...]:
    """Sorted paths of every rsaflow source file that ``script`` imports, directly or not,
    with the ``__init__.py`` of each package on the way."""
    seen: set[str] = set()
    todo = list(_imported_modules(script, src))
    while todo:
        module = todo.pop()
        parts = module.split(".")
        for i in range(1, len(parts) + 1):  # the packages a module import runs first
            name = ".".join(parts[:i])
            if name in seen:
                continue
            path = _module_file(name, src)
            if path is None:
                raise ImportError(f"{script} imports {name}, which is not in {src}")
            seen.add(name)
            todo.extend(_imported_modules(path, src) - seen)
    return tuple(sorted(str(_module_file(m, src)) for m in seen))
