"""The library files each rule depends on are derived from the scripts' imports (rsaflow.deps)."""

import ast
import json
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


def _tree(root):
    """A two-module package rsaflow (a imports b) and a script importing rsaflow.a."""
    pkg = root / "src" / "rsaflow"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from rsaflow import b\n")
    (pkg / "b.py").write_text("X = 1\n")
    (pkg / "c.py").write_text("Y = 2\n")
    script = root / "script.py"
    script.write_text("from rsaflow.a import b\n")
    return script, root / "src"


def test_the_import_cache_gives_the_closures_of_a_fresh_parse_and_follows_edits(tmp_path):
    from rsaflow.deps import ImportCache, library_files as closure

    for script in SCRIPTS:  # the real scripts: a cache filled on disk, then read back, changes nothing
        cold = closure.__wrapped__(script, SRC, ImportCache())
        assert closure.__wrapped__(script, SRC, ImportCache(tmp_path / "cache")) == cold
        assert closure.__wrapped__(script, SRC, ImportCache(tmp_path / "cache")) == cold
    assert (tmp_path / "cache" / "imports.json").is_file()

    script, src = _tree(tmp_path / "tree")
    cache_dir = tmp_path / "tree-cache"
    before = {p.rsplit("/", 1)[1] for p in closure.__wrapped__(script, src, ImportCache(cache_dir))}
    assert before == {"__init__.py", "a.py", "b.py"}
    # an edit of the same size keeps the file's size and may keep its mtime: the key is the content
    (src / "rsaflow" / "a.py").write_text("from rsaflow import c\n")
    after = {p.rsplit("/", 1)[1] for p in closure.__wrapped__(script, src, ImportCache(cache_dir))}
    assert after == {"__init__.py", "a.py", "c.py"}


def test_an_unreadable_import_cache_is_ignored(tmp_path):
    from rsaflow.deps import ImportCache, library_files as closure

    script, src = _tree(tmp_path / "tree")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "imports.json").write_text("{not json")
    files = closure.__wrapped__(script, src, ImportCache(tmp_path / "cache"))
    assert {p.rsplit("/", 1)[1] for p in files} == {"__init__.py", "a.py", "b.py"}
    assert json.loads((tmp_path / "cache" / "imports.json").read_text())["version"] == 1


def test_the_import_cache_keeps_only_the_files_of_this_run_once_it_grows(tmp_path, monkeypatch):
    from rsaflow import deps

    script, src = _tree(tmp_path / "tree")
    cache_dir = tmp_path / "cache"
    deps.library_files.__wrapped__(script, src, deps.ImportCache(cache_dir))
    (src / "rsaflow" / "b.py").write_text("X = 2\n")  # a new version of b: one more entry
    deps.library_files.__wrapped__(script, src, deps.ImportCache(cache_dir))
    assert len(json.loads((cache_dir / "imports.json").read_text())["files"]) == 5  # script, 3 files, old b
    monkeypatch.setattr(deps, "MAX_ENTRIES", 4)
    (src / "rsaflow" / "b.py").write_text("X = 3\n")
    deps.library_files.__wrapped__(script, src, deps.ImportCache(cache_dir))
    assert len(json.loads((cache_dir / "imports.json").read_text())["files"]) == 4  # script, __init__, a, b
