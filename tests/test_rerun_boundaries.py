"""Editing a library module reruns exactly the rules whose work it changes: every module against a table.

Each rule gets the sha256 of the rsaflow files its script imports, directly or not, as a param
(``code=code_digest(...)`` in workflow/rules/, the closure from :func:`rsaflow.deps.library_files`),
so a module boundary is a rerun boundary. :data:`RERUNS` says, for every module of the package,
which rules' code digests change when it is edited; it is reviewed as intent (DAG-time code reruns
no job, the extraction's closure holds nothing but what extracts, ...), the code is cut to satisfy
it, and the README's table "edit a module: reruns" is rendered from it (:func:`readme_table`;
``python tests/test_rerun_boundaries.py`` prints it). When a module is added, renamed or moved,
edit the entries here and paste the printed table into the README.

:data:`INTENDED` lists the modules whose cut is still wider than intended, with the rules they
should rerun once the work named there lands (strict xfail: the test fails as soon as the cut is
made, so that the entry moves into :data:`RERUNS`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import REPO, tiny_config
from rsaflow.deps import library_files

SRC = REPO / "src"
PACKAGE = SRC / "rsaflow"

#: The rules that run library code, in pipeline order (each has scripts/<rule>.py).
RULES = ("stimuli", "stimulus_grid", "activations", "rdm", "cka_gram", "external_rdm", "second_order",
         "rdm_figure", "stimulus_mds_figure", "second_order_figure", "mds_figure", "export_rsatoolbox",
         "effective_config")
ALL = frozenset(RULES)
NONE: frozenset = frozenset()
FIGURES = frozenset({"stimulus_grid", "rdm_figure", "stimulus_mds_figure", "second_order_figure", "mds_figure"})
RDM_FIGURES = frozenset({"rdm_figure", "stimulus_mds_figure"})
SECOND_ORDER_FIGURES = frozenset({"second_order_figure", "mds_figure"})
PER_LAYER = frozenset({"rdm", "cka_gram", "external_rdm"})
#: Rules that read RDM or second-order files through rsaflow.jobs.second_order's readers today.
READERS = frozenset({"second_order", "export_rsatoolbox"}) | RDM_FIGURES | SECOND_ORDER_FIGURES


def rules(*names: str) -> frozenset:
    return frozenset(names)


#: Module (relative to src/rsaflow) -> the rules whose code digest changes when it is edited.
RERUNS: dict[str, frozenset] = {
    # Imported by every job (package init, version in the provenance, logging set-up, error types).
    "__init__.py": ALL,
    "errors.py": ALL,
    "jobs/__init__.py": ALL,
    "jobs/common.py": ALL,
    # DAG-time only: config validation and normalisation, torchvision's catalog, code tracking; the CLI.
    "config.py": NONE,
    "schema.py": NONE,
    "catalog.py": NONE,
    "deps.py": NONE,
    "cli.py": NONE,
    # What a model entry means (DAG-time checks and the extraction job share it) and the extraction.
    "modelspec.py": rules("activations"),
    "extract.py": rules("activations"),
    # Layers below the jobs.
    "h5io.py": ALL - {"effective_config"},
    "provenance.py": ALL - {"effective_config", "stimulus_grid"},
    "finite.py": ALL - {"effective_config", "stimulus_grid", "stimuli"},
    "stimuli.py": rules("stimuli", "export_rsatoolbox"),
    "store.py": PER_LAYER,
    "rdm.py": PER_LAYER | READERS,
    "external.py": rules("external_rdm"),
    "compare.py": PER_LAYER | READERS,
    "inference.py": READERS,
    "figures.py": FIGURES,
    "export.py": rules("export_rsatoolbox"),
    # One jobs module per rule, and the readers some of them share.
    "jobs/stimuli.py": rules("stimuli", "export_rsatoolbox"),
    "jobs/stimulus_grid.py": rules("stimulus_grid"),
    "jobs/rdm.py": PER_LAYER,
    "jobs/cka_gram.py": rules("cka_gram"),
    "jobs/external_rdm.py": rules("external_rdm"),
    "jobs/second_order.py": READERS,
    "jobs/figure_inputs.py": RDM_FIGURES,
    "jobs/rdm_figure.py": rules("rdm_figure"),
    "jobs/stimulus_mds_figure.py": rules("stimulus_mds_figure"),
    "jobs/second_order_figure.py": rules("second_order_figure"),
    "jobs/mds_figure.py": rules("mds_figure"),
    "jobs/inputs.py": rules("export_rsatoolbox"),
    "jobs/export_rsatoolbox.py": rules("export_rsatoolbox"),
    "jobs/effective_config.py": rules("effective_config"),
}

_READERS = "needs the artifact readers in a module of their own, outside jobs/second_order.py (issue 13.1)"
_LAYER = "needs read_layer and write_rdm_file outside jobs/rdm.py, and upper_triangle outside rdm.py (issue 13.1)"
#: Module -> (the rules it should rerun, what is missing), where RERUNS is still wider than intended.
INTENDED: dict[str, tuple[frozenset, str]] = {
    "rdm.py": (rules("rdm"), f"{_READERS}; {_LAYER}"),
    "compare.py": (PER_LAYER | {"second_order"}, _READERS),
    "inference.py": (rules("second_order"), _READERS),
    "jobs/second_order.py": (rules("second_order"), _READERS),
    "jobs/rdm.py": (rules("rdm"), _LAYER),
    "provenance.py": (ALL - FIGURES - {"effective_config", "export_rsatoolbox"}, _READERS),
    "finite.py": (rules("activations", "rdm", "external_rdm", "second_order", "export_rsatoolbox"),
                  f"{_READERS}; {_LAYER}"),
    "stimuli.py": (rules("stimuli"), "needs the stimuli reader outside jobs/stimuli.py (issue 13.1)"),
    "jobs/stimuli.py": (rules("stimuli"), "needs the stimuli reader outside jobs/stimuli.py (issue 13.1)"),
}


def modules() -> list[str]:
    return sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py"))


def closures() -> dict[str, set[str]]:
    """Rule -> the modules (relative to src/rsaflow) in its code digest."""
    return {rule: {str(Path(p).relative_to(PACKAGE)) for p in library_files(REPO / "scripts" / f"{rule}.py", SRC)}
            for rule in RULES}


def reruns(module: str) -> frozenset:
    """The rules whose code digest changes when ``module`` is edited."""
    return frozenset(rule for rule, files in closures().items() if module in files)


def _rule_list(found: frozenset) -> str:
    if not found:
        return "no job (nothing reruns)"
    if found == ALL:
        return "every rule"
    if len(ALL - found) <= 3:
        return "every rule but " + ", ".join(f"`{r}`" for r in RULES if r not in found)
    return ", ".join(f"`{r}`" for r in RULES if r in found)


def readme_table() -> str:
    """The README's "edit a module: reruns" table: modules with the same rules share a row."""
    rows: dict[frozenset, list[str]] = {}
    for module, found in RERUNS.items():
        rows.setdefault(found, []).append(module)
    lines = ["| edit `src/rsaflow/...` | reruns (rules whose code digest changes) |", "|---|---|"]
    for found, mods in rows.items():
        lines.append(f"| {', '.join(f'`{m}`' for m in mods)} | {_rule_list(found)} |")
    return "\n".join(lines)


def test_every_module_of_the_package_is_in_the_table():
    assert sorted(RERUNS) == modules()


def test_the_rules_are_those_with_a_code_digest():
    text = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    assert {p.stem for p in (REPO / "scripts").glob("*.py")} == ALL
    for rule in RULES:
        assert f'code=code_digest("{rule}")' in text.split(f"rule {rule}:", 1)[1].split("\nrule ", 1)[0]


@pytest.mark.parametrize("module", sorted(RERUNS))
def test_editing_a_module_changes_the_code_digest_of_exactly_its_rules(module):
    assert reruns(module) == RERUNS[module]


@pytest.mark.parametrize("module", sorted(INTENDED))
def test_intended_cut(module, request):
    intended, missing = INTENDED[module]
    request.applymarker(pytest.mark.xfail(strict=True, reason=missing))
    assert reruns(module) == intended


def test_readme_shows_the_table():
    assert readme_table() in (REPO / "README.md").read_text()


def _edited(wf, module: str) -> set:
    """Dry-run jobs after appending a comment to ``module`` in the workflow copy (restored after)."""
    path = wf.src / "src" / "rsaflow" / module
    original, stat = path.read_text(), path.stat()
    path.write_text(original + "\n# edited\n")
    try:
        return wf.planned()
    finally:
        path.write_text(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.slow
def test_dry_run_after_an_edit_schedules_the_tables_rules(tmp_path):
    """After a complete run, an edit plans what forcing the table's rules plans: those jobs and what
    follows from their outputs; DAG-time code (config.py) plans nothing."""
    from conftest import Workflow, write_cifar10

    wf = Workflow(tmp_path)
    wf.write_config(tiny_config(write_cifar10(tmp_path / "cifar")))
    wf.run()
    assert wf.planned() == set()
    for module in ("config.py", "modelspec.py", "store.py", "jobs/stimulus_grid.py"):
        jobs = _edited(wf, module)
        forced = RERUNS[module] & {rule for rule, _ in wf.planned("--forceall")}
        expected = wf.planned("--forcerun", *sorted(forced)) if forced else set()
        assert jobs == expected, module
        assert forced <= {rule for rule, _ in jobs}, module
    assert wf.planned() == set()


if __name__ == "__main__":
    print(readme_table())
