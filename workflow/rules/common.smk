import os
import sys
from pathlib import Path

# The rsaflow package lives in src/ beside this workflow. Jobs import it through PYTHONPATH
# (this workflow's copy wins over any installed one), and the DAG-build code imports it here.
# Found from this file: workflow.basedir is the main Snakefile's folder, not ours in a module.
ROOT = Path(str(workflow.current_basedir)).parents[1]
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))
# (Setting, not requiring, the variable: hence update() rather than an envvars directive.)
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
)

from rsaflow import catalog, deps, modelspec, provenance  # noqa: E402
from rsaflow import config as rsacfg  # noqa: E402
from rsaflow import schema as rsaschema  # noqa: E402
from rsaflow.errors import ConfigError, RsaflowError  # noqa: E402

try:
    # As snakemake.utils.validate (defaults filled into config), each violation one line; also
    # as it, a module statement's `skip_validation: true` reports nothing (defaults still filled).
    _SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
    if workflow.modifier.skip_validation:
        rsaschema.schema_errors(config, rsaschema.load_schema(_SCHEMA))
    else:
        rsaschema.validate(config, _SCHEMA)
    # Architectures, weights names and graph nodes, from a catalog of torchvision built once per
    # torchvision version (subprocess; cached under .snakemake/rsaflow/). Where torch is not
    # installed beside Snakemake, the extraction jobs check them instead.
    _CATALOG = catalog.load_catalog(
        sorted({m.get("arch", k) for k, m in config["models"].items()}),
        Path(".snakemake") / "rsaflow",
    )
    if _CATALOG is not None:
        catalog.check_archs(
            {k: m.get("arch", k) for k, m in config["models"].items()}, _CATALOG
        )
    NORM = rsacfg.normalise(config, _CATALOG["nodes"] if _CATALOG else None)
    STIMULUS_FILES = rsacfg.stimulus_files(config["stimuli"])
    # The folder's images as one digest of (path, size, mtime): a param, not thousands of inputs.
    STIMULUS_LIST = rsacfg.files_digest(STIMULUS_FILES)
    if _CATALOG is not None:
        catalog.check_models(NORM["models"], _CATALOG)
    # Every path of the config, before the DAG is built (an input function cannot do it: Snakemake
    # drops a job whose input function fails when its output exists, keeping a stale result).
    # --lint reads no data, so it checks none (the default config's CIFAR10 may not be there yet).
    if "--lint" not in sys.argv:
        rsacfg.check_paths(config, NORM)
except RsaflowError as exc:
    raise WorkflowError(str(exc)) from None

BRANCHES = NORM["branches"]
ANALYSES = NORM["analyses"]
EXTERNAL = config["external_rdms"]


wildcard_constraints:
    model=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    layer=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    name=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    rdm_dir=r"rdms(_(euclidean|sqeuclidean|correlation|cosine))?",
    so_dir=r"second_order(_[A-Za-z0-9][A-Za-z0-9_-]*)?",
    kernel=r"[A-Za-z0-9][A-Za-z0-9_.-]*",


# Snakemake does not track the modules a script imports. Each rule gets the sha256 of the library
# files its script imports (directly or not; derived from the source by rsaflow.deps) as a param:
# editing a module reruns exactly the rules that run it, without listing files as inputs.
def library_files(script):
    return list(deps.library_files(ROOT / "scripts" / f"{script}.py", SRC))


def code_digest(script):
    return provenance.code_digest(library_files(script))


def slice_json(section):
    """A rule's config slice as canonical JSON: reruns on a changed value, never on reordering."""
    return rsacfg.dumps(config[section])


def model_spec(wildcards):
    """One model's extraction slice (rsaflow.config.model_slice) as canonical JSON."""
    if wildcards.model not in NORM["models"]:
        raise WorkflowError(f"no model {wildcards.model!r} in the config")
    return rsacfg.dumps(rsacfg.model_slice(config, NORM, wildcards.model))


def layer_expectation(wildcards):
    """The config slice a layer's activation file must record (checked by its consumers)."""
    if (wildcards.model, wildcards.layer) not in BRANCHES:
        raise WorkflowError(
            f"no layer {wildcards.layer!r} of model {wildcards.model!r} in the config"
        )
    spec = rsacfg.model_slice(config, NORM, wildcards.model)
    return rsacfg.dumps(modelspec.layer_slice(spec, wildcards.layer))


# The config's own files are local(): relative to the working directory, never under the path
# prefix of a module statement (README, "Use as a Snakemake module").
def checkpoint_input(wildcards):
    path = modelspec.checkpoint_path(NORM["models"][wildcards.model]["weights"])
    return [local(str(path))] if path else []


def stimulus_inputs(wildcards):
    """CIFAR10's files (unless downloading); a folder's images are tracked by STIMULUS_LIST."""
    return [local(str(p)) for p in rsacfg.cifar10_files(config["stimuli"])]


def rdm_spec(wildcards):
    """The metric comes from the folder: rdms/ holds rdm.metric, rdms_<metric>/ the others."""
    d = wildcards.rdm_dir
    metric = config["rdm"]["metric"] if d == "rdms" else d[len("rdms_") :]
    return rsacfg.dumps({"metric": metric, "block": config["rdm"]["block"]})


def analysis(wildcards):
    for name, spec in ANALYSES.items():
        if spec["second_order_dir"] == wildcards.so_dir:
            return spec
    raise WorkflowError(
        f"no analysis writes results/{wildcards.so_dir}/ (analyses: {', '.join(ANALYSES)})"
    )


def second_order_spec(wildcards):
    return rsacfg.dumps(rsacfg.analysis_slice(analysis(wildcards)))


def external_files():
    return [f"results/external/{name}.h5" for name in sorted(EXTERNAL)]


def external_path(wildcards):
    return local(EXTERNAL[wildcards.name]["path"])


def rdm_files(rdm_dir="rdms"):
    return [f"results/{rdm_dir}/{m}/{l}.h5" for m, l in BRANCHES]


def kernel_spec(wildcards):
    """A per-layer activation artifact's slice, looked up by its folder name (rsaflow.config.kernels)."""
    if wildcards.kernel not in NORM["kernels"]:
        raise WorkflowError(
            f"no analysis uses results/kernels/{wildcards.kernel}/ "
            f"(in use: {', '.join(NORM['kernels']) or 'none'})"
        )
    return rsacfg.dumps(
        {**NORM["kernels"][wildcards.kernel], "block": config["rdm"]["block"]}
    )


def second_order_inputs(wildcards):
    """An analysis's RDMs plus the external ones, or its per-layer activation artifacts."""
    spec = analysis(wildcards)
    if spec["artifact"] != "rdm":
        return [f"results/kernels/{spec['kernel']}/{m}/{l}.h5" for m, l in BRANCHES]
    return rdm_files(spec["rdm_dir"]) + (
        external_files() if spec["joins_external"] else []
    )


def n_stimuli_estimate():
    """Stimuli the config selects (for memory estimates): per_class x classes."""
    s = config["stimuli"]
    classes = {"cifar10": 10, "digits": 10}.get(s["source"])
    if classes is None:
        classes = len({Path(f).parent.name for f in STIMULUS_FILES}) or 1
    per_class = s["per_class"] if s["per_class"] is not None else 1000
    return classes * per_class


def rdm_mem_mb(wildcards, attempt):
    """RDM job: the N x N float64 RDM, then its condensed values, ranks and sort temporaries
    (rsaflow.rdmfile.write: about 4 S = 2 N^2 x 8 B), plus a column block, plus 300 MB.
    """
    n = n_stimuli_estimate()
    return (
        int(300 + (4 * n * n * 8 + 2 * n * config["rdm"]["block"] * 8) / 1e6) * attempt
    )


def kernel_mem_mb(wildcards, attempt):
    """Per-layer activation artifact (rsaflow.jobs.kernel): ~6 N^2 x 8 B + a column block + 300 MB."""
    n = n_stimuli_estimate()
    return (
        int(300 + (6 * n * n * 8 + 2 * n * config["rdm"]["block"] * 8) / 1e6) * attempt
    )


def second_order_mem_mb(wildcards, attempt):
    """Streaming second order (rsaflow.jobs.second_order): chunk_mb + 48 K^2 B + 0.6 MB per
    open RDM file (K) + 300 MB;
    kendall_tau_a ~10 x 8 P for two vectors and the sort; shape, bures ~6 x 8 N^2 (two factors
    and an SVD); cosine_cov, corr_cov ~8 x 8 N^2 (one whole-RDM vector and its transients
    beside the chunk_mb / 2 of row vectors); inference all K condensed vectors
    plus the (K, N, N) RDMs it takes, x2 for its resamples. P = N (N - 1) / 2."""
    spec = analysis(wildcards)
    n = n_stimuli_estimate()
    k = len(BRANCHES) + (len(EXTERNAL) if spec["joins_external"] else 0)
    p = n * (n - 1) / 2
    mb = 300 + spec.get("chunk_mb", 256) + 48 * k * k / 1e6 + 0.6 * k
    if spec["method"] == "kendall_tau_a":
        mb += 10 * 8 * p / 1e6
    elif spec["artifact"] == "shape":
        mb += 6 * 8 * n * n / 1e6
    elif spec["method"] in ("cosine_cov", "corr_cov"):
        mb += 8 * 8 * n * n / 1e6
    if spec["bootstrap"] or spec["permutations"]:
        mb += (8 * k * p + 2 * 8 * k * n * n) / 1e6
    return int(mb) * attempt


def figure_files(so_dir):
    return [
        f"results/figures/{so_dir}/heatmap.png",
        f"results/figures/{so_dir}/mds.png",
    ]


def all_outputs():
    outputs = [
        "results/figures/stimuli.png",
        "results/figures/rdms.png",
        "results/figures/stimulus_mds.png",
        "results/export/rdms_rsatoolbox.h5",
        "results/config.yaml",
    ]
    for spec in ANALYSES.values():
        outputs.append(f"results/{spec['second_order_dir']}/matrix.tsv")
        outputs += figure_files(spec["second_order_dir"])
    return outputs
