"""Which library files a workflow script runs: the closure of its ``rsaflow`` imports.

Snakemake does not notice edits to modules that a script imports, so each rule takes these files
as inputs. They are derived from the source (``ast``, nothing is imported), imports inside
functions included (and the registry's lazy ones: a module that calls ``.pair_function`` imports
the modules its entries name), so the lists cannot drift from the code: editing a module reruns exactly the
rules whose scripts reach it. Pure standard library.

Parsing every module is most of what the code digests cost a DAG build (about 60 files), so each
file's import statements are kept in an :class:`ImportCache`, keyed by the sha256 of the file's
bytes: within a process, and between runs in the workflow's ``.snakemake/rsaflow/imports.json``.
The key is the content, so the cache cannot go stale: a file whose bytes differ is parsed again.
"""

from __future__ import annotations

import ast
import hashlib
import re
from functools import lru_cache
from pathlib import Path

from rsaflow import filedigest

#: A function the registry names as a string (Method.pair), imported on first use by
#: Method.pair_function: each module that calls that imports every module so named.
REGISTRY, LAZY_CALL = "rsaflow.methods", "pair_function"
LAZY = re.compile(r"^rsaflow(?:\.\w+)+:\w+$")
#: The cache's file name under its folder, and the version of its layout (another is ignored).
CACHE_FILE, CACHE_VERSION = "imports.json", 1
#: Past this many entries (one per version of a file seen), a save keeps only this process's.
MAX_ENTRIES = 1000


def _module_file(module: str, src: Path) -> Path | None:
    """src/rsaflow/a/b.py or src/rsaflow/a/b/__init__.py for ``rsaflow.a.b``; None if neither."""
    base = src.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def import_facts(source: str, filename: str = "<source>") -> dict:
    """What a module's source says about its ``rsaflow`` imports, before resolving against a tree:
    ``import`` (names of ``import rsaflow.x``), ``from`` ([module, [names]] of ``from rsaflow.x
    import a, b``), ``lazy`` (whether it calls ``.pair_function``) and ``targets`` (the modules its
    ``"rsaflow.module:function"`` strings name)."""
    facts = {"import": set(), "from": [], "lazy": False, "targets": set()}
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            facts["import"] |= {a.name for a in node.names if a.name.split(".")[0] == "rsaflow"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "rsaflow":
            facts["from"].append([node.module, sorted(a.name for a in node.names)])
        elif isinstance(node, ast.Attribute) and node.attr == LAZY_CALL:
            facts["lazy"] = True
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and LAZY.match(node.value):
            facts["targets"].add(node.value.split(":")[0])
    return {**facts, "import": sorted(facts["import"]), "targets": sorted(facts["targets"])}


class ImportCache:
    """:func:`import_facts` of each file, keyed by the sha256 of its bytes; kept between runs in
    ``folder``/imports.json (None: in this process only), written atomically by :meth:`save`
    (rsaflow.filedigest's versioned JSON cache)."""

    def __init__(self, folder=None):
        self.path = Path(folder) / CACHE_FILE if folder is not None else None
        self.facts = filedigest.load_cache(self.path, CACHE_VERSION) if self.path is not None else {}
        self.dirty, self.seen = False, set()

    def facts_of(self, path: Path) -> dict:
        data = path.read_bytes()
        key = hashlib.sha256(data).hexdigest()
        self.seen.add(key)
        if key not in self.facts:
            self.facts[key] = import_facts(data.decode("utf-8"), str(path))
            self.dirty = True
        return self.facts[key]

    def save(self) -> None:
        if self.dirty and self.path is not None:
            if len(self.facts) > MAX_ENTRIES:  # edits add entries: keep the files of this process
                self.facts = {k: v for k, v in self.facts.items() if k in self.seen}
            filedigest.save_cache(self.path, self.facts, CACHE_VERSION)
            self.dirty = False


#: The cache used where none is given: parses each file once per process.
PROCESS_CACHE = ImportCache()


def _imported_modules(path: Path, src: Path, cache: ImportCache) -> set[str]:
    """``rsaflow`` modules imported anywhere in ``path`` (``from rsaflow import x`` counts x if a module)."""
    facts = cache.facts_of(path)
    found = set(facts["import"])
    for module, names in facts["from"]:
        found.add(module)
        found |= {f"{module}.{a}" for a in names if _module_file(f"{module}.{a}", src)}
    if facts["lazy"]:
        found |= set(cache.facts_of(_module_file(REGISTRY, src))["targets"])
    return found


@lru_cache(maxsize=None)
def library_files(script: Path, src: Path, cache: ImportCache = PROCESS_CACHE) -> tuple[str, ...]:
    """Sorted paths of every rsaflow source file that ``script`` imports, directly or not,
    with the ``__init__.py`` of each package on the way."""
    seen: set[str] = set()
    todo = list(_imported_modules(script, src, cache))
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
            todo.extend(_imported_modules(path, src, cache) - seen)
    cache.save()
    return tuple(sorted(str(_module_file(m, src)) for m in seen))
