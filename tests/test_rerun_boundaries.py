"""Editing a library module reruns exactly the rules whose work it changes: every module against a table.

Each rule gets the sha256 of the rsaflow files its script imports, directly or not, as a param
(``code=code_digest(...)`` in workflow/rules/, the closure from :func:`rsaflow.deps.library_files`),
so a module boundary is a rerun boundary. :data:`RERUNS` says, for every module of the package,
which rules' code digests change when it is edited; it is reviewed as intent (DAG-time code reruns
no job, the extraction's closure holds nothing but what extracts, ...), the code is cut to satisfy
it, and the table "Edit a module: what reruns" of docs/development.md is rendered from it (:func:`readme_table`;
``python tests/test_rerun_boundaries.py`` prints it). When a module is added, renamed or moved,
edit the entries here and paste the printed table into docs/development.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO, tiny_config
from rsaflow.deps import library_files
from rsaflow.methods import METHODS

SRC = REPO / "src"
PACKAGE = SRC / "rsaflow"

#: The rules that run library code, in pipeline order (each has scripts/<rule>.py).
RULES = ("stimuli", "stimulus_grid", "activations", "rdm", "kernel", "external_rdm", "second_order", "second_order_tile",
         "rdm_figure", "stimulus_mds_figure", "second_order_figure", "mds_figure", "brain_figure",
         "export_rsatoolbox", "effective_config", "brain_rdm", "brain_group", "brain_eval", "evaluation_figure")
ALL = frozenset(RULES)
NONE: frozenset = frozenset()
FIGURES = frozenset({"stimulus_grid", "rdm_figure", "stimulus_mds_figure", "second_order_figure", "mds_figure",
                     "brain_figure"})
RDM_FIGURES = frozenset({"rdm_figure", "stimulus_mds_figure"})
SECOND_ORDER_FIGURES = frozenset({"second_order_figure", "mds_figure", "brain_figure"})
PER_LAYER = frozenset({"rdm", "kernel", "external_rdm"})
#: Rules that read RDM or second-order files (through rsaflow.results, the one reader module).
#: The second order and its tiles: they share the engine's inputs, blocks and tiles (rsaflow.second_order).
SECOND_ORDER = frozenset({"second_order", "second_order_tile"})
READERS = SECOND_ORDER | {"export_rsatoolbox"} | RDM_FIGURES | SECOND_ORDER_FIGURES
#: Rules that write RDM files or compare them (rsaflow.rdmfile: the file format and its vectors).
RDM_WRITERS = PER_LAYER | SECOND_ORDER
#: The extraction: a model entry's network, its layers and its forward pass (nothing else runs it).
EXTRACTION = frozenset({"activations"})
#: Brain responses: the subjects' RDMs and the region's group (they write RDM files), then the evaluation.
BRAIN_RDMS = frozenset({"brain_rdm", "brain_group"})
BRAIN = BRAIN_RDMS | {"brain_eval"}
#: Rules that read RDMs from elsewhere (external RDM files, brain responses).
EXTERNAL = BRAIN_RDMS | {"external_rdm"}
#: Every figure, the evaluation's too.
ALL_FIGURES = FIGURES | {"evaluation_figure"}
#: Rules that compute with RDMs (ranks, comparisons): the RDM writers and the brain's.
RDM_NUMERICS = RDM_WRITERS | BRAIN
#: Rules that may run the numeric kernels on a backend (rdm.backend, second_order.backend).
KERNEL_USERS = SECOND_ORDER | {"rdm"}


def rules(*names: str) -> frozenset:
    return frozenset(names)


#: Module (relative to src/rsaflow) -> the rules whose code digest changes when it is edited.
RERUNS: dict[str, frozenset] = {
    # Imported by every job (package init, version in the provenance, logging set-up, error types).
    "__init__.py": ALL,
    "errors.py": ALL,
    "jobs/__init__.py": ALL,
    "jobs/common.py": ALL,
    # DAG-time only: config validation and normalisation, torchvision's catalog, code tracking; the CLI;
    "config.py": NONE,
    "schema.py": NONE,
    "catalog.py": NONE,
    "deps.py": NONE,
    "snakemake_checksums.py": NONE,  # patches Snakemake in its own process (DAG-time import)
    "cli.py": NONE,
    # The folder's image digest (per-file sha256 cache): DAG-time, and read by the external job.
    "filedigest.py": rules("external_rdm"),  # DAG-time digests; the external job reads their cache
    # Atomic text files: the stimulus order table, the effective config, bindings (and DAG-time caches).
    "atomic.py": EXTERNAL | rules("stimuli", "effective_config"),
    # Id-less external RDMs bound to the stimulus set they were first used with.
    "binding.py": EXTERNAL,
    # What a model entry means (DAG-time checks and the extraction job share it) and the extraction.
    "modelspec.py": EXTRACTION,
    "extract.py": EXTRACTION,
    # Per-stimulus shards of activations (their store keys name the code: an edit recomputes them).
    "shards.py": EXTRACTION,
    # Layers below the jobs: HDF5, provenance of what a job writes, finiteness checks, the store.
    "h5io.py": ALL - {"effective_config"},
    "provenance.py": rules("stimuli") | EXTRACTION | RDM_NUMERICS,
    "finite.py": EXTRACTION | EXTERNAL | BRAIN | rules("rdm", "second_order", "export_rsatoolbox"),
    "store.py": RDM_WRITERS | BRAIN_RDMS,
    # The science, each with the rules that compute with it.
    "stimuli.py": rules("stimuli"),
    "rdm.py": rules("rdm"),
    "rdm_grow.py": rules("rdm"),
    "external.py": EXTERNAL,
    "compare.py": RDM_NUMERICS,
    "methods.py": RDM_NUMERICS | rules("second_order_figure", "mds_figure"),  # figures label the matrix by it
    "rdmfile.py": RDM_WRITERS | BRAIN_RDMS,
    "inference.py": rules("second_order"),
    "measures.py": rules("kernel", "brain_eval") | SECOND_ORDER,  # kernels; the noise ceilings of external groups
    # The figures: what is drawn (pure numbers), then one plotting module per kind of figure.
    "figure_data.py": ALL_FIGURES | rules("brain_eval"),
    "label_boxes.py": rules("mds_figure"),
    "plots/__init__.py": ALL_FIGURES,
    "plots/base.py": ALL_FIGURES,
    "plots/stimuli.py": rules("stimulus_grid", "rdm_figure", "stimulus_mds_figure"),
    "plots/second_order.py": rules("second_order_figure"),
    "plots/mds.py": rules("mds_figure"),
    "plots/brain.py": rules("brain_figure"),
    "export.py": rules("export_rsatoolbox"),
    # The one reader of every artifact (also the notebook API).
    "results.py": READERS | EXTERNAL | BRAIN | rules("stimuli"),  # the stimuli job writes order.tsv from its ids
    # One jobs module per rule, and what some of them share.
    "jobs/stimuli.py": rules("stimuli"),
    "jobs/stimulus_grid.py": rules("stimulus_grid"),
    "jobs/per_layer.py": PER_LAYER | BRAIN_RDMS,
    "jobs/rdm.py": rules("rdm"),
    "jobs/kernel.py": rules("kernel"),
    "jobs/external_rdm.py": rules("external_rdm"),
    "jobs/second_order.py": rules("second_order"),
    "jobs/second_order_tile.py": rules("second_order_tile"),
    # The second-order engine (rsaflow.second_order): tile membership is DAG-time code too.
    "second_order/__init__.py": SECOND_ORDER,
    "second_order/blocks.py": SECOND_ORDER,
    "second_order/ceilings.py": rules("second_order"),
    "second_order/inputs.py": SECOND_ORDER,
    "second_order/outputs.py": rules("second_order"),
    "second_order/pairs.py": rules("second_order"),
    "second_order/tiles.py": SECOND_ORDER,
    "second_order/tiling.py": NONE,
    "jobs/figure_inputs.py": RDM_FIGURES,
    "jobs/rdm_figure.py": rules("rdm_figure"),
    "jobs/stimulus_mds_figure.py": rules("stimulus_mds_figure"),
    "jobs/second_order_figure.py": rules("second_order_figure"),
    "jobs/mds_figure.py": rules("mds_figure"),
    "jobs/brain_figure.py": rules("brain_figure"),
    "jobs/export_rsatoolbox.py": rules("export_rsatoolbox"),
    "jobs/effective_config.py": rules("effective_config"),
    # The second order's products (and the BLAS thread limit the evaluation reads) and every RDM
    # computation's ranks.
    "products.py": SECOND_ORDER | rules("brain_eval"),
    # The numeric kernels' backends (rdm.backend, second_order.backend): the jobs that may run them
    # (and the evaluation, through rsaflow.products).
    "kernels.py": KERNEL_USERS | rules("brain_eval"),
    "torch_kernels.py": KERNEL_USERS | rules("brain_eval"),
    "ranking.py": RDM_NUMERICS,
    "argsort_ranking.py": RDM_NUMERICS,
    # The extraction's parts: checkpoints, layer outputs, the model sources (the lister is DAG-time).
    "checkpoints.py": EXTRACTION,
    "layers.py": EXTRACTION,
    "sources/__init__.py": EXTRACTION,
    "sources/clip_models.py": EXTRACTION,
    "sources/hf_models.py": EXTRACTION,
    "sources/lister.py": NONE,
    "sources/python_models.py": EXTRACTION,
    "sources/timm_models.py": EXTRACTION,
    "sources/torchvision_models.py": EXTRACTION,
    "sources/transforms.py": EXTRACTION,
    # Noise ceilings and resampling (the second order's and the evaluation's); brain responses: the
    # subjects' RDMs and the region's group (one jobs module), the evaluation.
    "ceiling.py": rules("second_order", "brain_eval"),
    "resampling.py": rules("second_order", "brain_eval"),
    "subject_bootstrap.py": rules("second_order"),
    "evaluation.py": rules("brain_eval"),
    "evaluation_moments.py": rules("brain_eval"),
    "jobs/brain_eval.py": rules("brain_eval"),
    "jobs/brain_rdm.py": BRAIN_RDMS,
    "plots/evaluation.py": rules("evaluation_figure"),
    "responses/__init__.py": BRAIN_RDMS,
    "responses/io.py": BRAIN_RDMS,
    "responses/noise.py": BRAIN_RDMS,
    "responses/rdms.py": BRAIN_RDMS,
}
#: A comparison method's own function (a module that rsaflow.methods names in a Method.pair) reruns
#: what compares RDMs: the rules that call Method.pair_function (rsaflow.deps), as compare.py.
METHOD_FUNCTIONS = sorted({f"{m.pair.split(':')[0].removeprefix('rsaflow.').replace('.', '/')}.py"
                           for m in METHODS.values() if m.pair})
RERUNS.update({module: RERUNS["compare.py"] for module in METHOD_FUNCTIONS})
#: How the table names those modules (so that a new method's module changes no row of the docs).
METHOD_FUNCTIONS_ROW = "the module of each method's own function (`Method.pair`, rsaflow.methods)"


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
    """docs/development.md's "edit a module: what reruns" table: modules with the same rules share a row."""
    rows: dict[frozenset, list[str]] = {}
    for module, found in RERUNS.items():
        rows.setdefault(found, []).append(module)
    lines = ["| edit `src/rsaflow/...` | reruns (rules whose code digest changes) |", "|---|---|"]
    for found, mods in rows.items():
        names = [f"`{m}`" for m in mods if m not in METHOD_FUNCTIONS]
        names += [METHOD_FUNCTIONS_ROW] if "compare.py" in mods else []  # with or without such modules
        lines.append(f"| {', '.join(names)} | {_rule_list(found)} |")
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


def test_development_docs_show_the_table():
    assert readme_table() in (REPO / "docs" / "development.md").read_text()


@pytest.mark.slow
def test_dry_run_after_an_edit_schedules_the_tables_rules(tmp_path):
    """After a complete run, an edit plans what forcing the table's rules plans: those jobs and what
    follows from their outputs; DAG-time code (config.py) plans nothing."""
    from conftest import Workflow, write_cifar10

    wf = Workflow(tmp_path)
    wf.write_config(tiny_config(write_cifar10(tmp_path / "cifar")))
    wf.run()
    assert wf.planned() == set()
    every = wf.planned("--forceall")  # the same for every edit (a dry run forces, it changes nothing)
    for module in ("config.py", "modelspec.py", "store.py", "jobs/stimulus_grid.py"):
        jobs = wf.edited(module)
        forced = RERUNS[module] & {rule for rule, _ in every}
        # rule rdm runs as rdm__<model> (rdm.jobs: model): forced by its outputs
        targets = sorted(r for r in forced if r != "rdm") + sorted(o for r, o in every if r == "rdm" and "rdm" in forced)
        expected = wf.planned("--forcerun", *targets) if forced else set()
        assert jobs == expected, module
        assert forced <= {rule for rule, _ in jobs}, module
    assert wf.planned() == set()


if __name__ == "__main__":
    print(readme_table())
