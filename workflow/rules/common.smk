import json
import os
import re
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

from rsaflow import catalog, deps, filedigest, modelspec, provenance  # noqa: E402
from rsaflow import config as rsacfg  # noqa: E402
from rsaflow import kernels as rsakernels  # noqa: E402
from rsaflow import external as rsaexternal  # noqa: E402
from rsaflow import schema as rsaschema  # noqa: E402
from rsaflow.errors import ConfigError, RsaflowError  # noqa: E402
from rsaflow.second_order.tiling import tile_members  # noqa: E402
from rsaflow.snakemake_checksums import hoist_input_checksums  # noqa: E402

# Snakemake hashes every input of a finished job once per output; this hashes each once per job
# (the records are the same; rsaflow.snakemake_checksums says why and how).
hoist_input_checksums()
from rsaflow.methods import METHODS, METRICS, NOISE_CEILING_METHODS  # noqa: E402

try:
    # As snakemake.utils.validate (defaults filled into config), each violation one line; also
    # as it, a module statement's `skip_validation: true` reports nothing (defaults still filled).
    _SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
    if workflow.modifier.skip_validation:
        rsaschema.schema_errors(config, rsaschema.load_schema(_SCHEMA))
    else:
        rsaschema.validate(config, _SCHEMA)
    # Architectures, weights names and graph nodes, from a catalog of torchvision built once per
    # torchvision and torch version (a subprocess; cached in the user's cache, rsaflow.catalog),
    # and of the other sources once per library version (cached under .snakemake/rsaflow/).
    # Where a library is not installed beside Snakemake, the extraction jobs check them instead.
    _TV_ARCHS = catalog.torchvision_archs(config["models"])
    _CATALOG = catalog.load_catalog(
        sorted(set(_TV_ARCHS.values())), catalog.cache_dir()
    )
    if _CATALOG is not None:
        catalog.check_archs(_TV_ARCHS, _CATALOG)
    _SOURCES = catalog.load_source_catalogs(config["models"], filedigest.CACHE_DIR)
    NORM = rsacfg.normalise(
        config, catalog.node_table(_CATALOG, _SOURCES, config["models"])
    )
    STIMULUS_FILES = rsacfg.stimulus_files(config["stimuli"])
    # The folder's images as one digest of their paths and bytes: a param, not thousands of
    # inputs. Per-file sha256s are cached by (path, size, mtime, ctime, inode) under
    # .snakemake/rsaflow/, so a dry run reads only the files that changed (rsaflow.filedigest).
    STIMULUS_CONTENT = filedigest.content_digest(
        STIMULUS_FILES, config["stimuli"].get("root"), filedigest.CACHE_DIR
    )
    if _CATALOG is not None:
        catalog.check_models(NORM["models"], _CATALOG)
    catalog.check_source_models(NORM["models"], _SOURCES)
    # Every path of the config, before the DAG is built (an input function cannot do it: Snakemake
    # drops a job whose input function fails when its output exists, keeping a stale result).
    # --lint reads no data, so it checks none (the default config's CIFAR10 may not be there yet).
    if "--lint" not in sys.argv:
        rsacfg.check_paths(config, NORM)
        rsaexternal.check_ids(config["external_rdms"])
except RsaflowError as exc:
    # One line where a person reads it: a WorkflowError would be printed with two more lines
    # pointing into this file. (SystemExit ends Snakemake with status 1 and nothing else printed.)
    print(exc, file=sys.stderr)
    raise SystemExit(1)

BRANCHES = NORM["branches"]
ANALYSES = NORM["analyses"]
EXTERNAL = config["external_rdms"]
MAIN_METRIC = config["rdm"]["metric"]
# External RDM groups (several subjects' RDMs of a region; rsaflow.external.is_group reads headers only).
GROUPS = sorted(n for n, s in EXTERNAL.items() if rsaexternal.is_group(s))
# Brain regions from measured responses (rules in brain.smk): each region is a group too.
BRAIN = config["brain"]
GROUPS += [f"brain/{region}" for region in sorted(BRAIN)]
for _region, _spec in BRAIN.items():
    _ev = _spec["evaluate"]
    if _ev["rdm_metric"] not in (None, *METRICS):
        raise SystemExit(  # one line, as every config error (no traceback into this file)
            f"config error at brain.{_region}.evaluate.rdm_metric: {_ev['rdm_metric']!r} is no RDM "
            f"metric; allowed: {', '.join(sorted(METRICS))} (or null for rdm.metric)"
        )
    if _ev["test"] == "bootstrap" and _ev["bootstrap"] == "none":
        raise SystemExit(
            f"config error at brain.{_region}.evaluate.test: 'bootstrap' needs "
            "evaluate.bootstrap subjects, stimuli or both (or test: t-test)"
        )
    if _ev["bootstrap"] in ("stimuli", "both"):
        from rsaflow.evaluation import resamples_stimuli

        if not resamples_stimuli(_ev["method"]):
            raise SystemExit(
                f"config error at brain.{_region}.evaluate.bootstrap: {_ev['bootstrap']!r} resamples "
                f"stimuli, which method {_ev['method']} does not (it whitens each resample's whole RDM); "
                "use bootstrap: subjects or none"
            )


def one_of(names):
    """A wildcard constraint matching exactly one of ``names``."""
    return "|".join(re.escape(n) for n in sorted(names))


# The metric and the analysis travel as wildcards, constrained to the names that exist (the
# metric registry, the config's analyses), and are looked up by name: no folder name is parsed.
wildcard_constraints:
    model=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    layer=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    name=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    metric=one_of(METRICS),
    analysis=one_of(ANALYSES),
    kernel=r"[A-Za-z0-9][A-Za-z0-9_.-]*",


# Each artifact's path is written once, here: rules name it in output: with its wildcards, the
# functions below expand it. (Plain strings, so a module statement's path prefix applies once.)
STIMULI = "results/stimuli/stimuli.h5"
# The stimulus order as a table (position, id, class) that users build their brain files from.
STIMULUS_ORDER = "results/stimuli/order.tsv"
EXPORT = "results/export/rdms_rsatoolbox.h5"
EFFECTIVE_CONFIG = "results/config.yaml"


def activations_path(model="{model}"):
    return f"results/activations/{model}"


def rdm_path(metric="{metric}", model="{model}", layer="{layer}"):
    return f"results/rdms/{metric}/{model}/{layer}.h5"


def kernel_path(kernel="{kernel}", model="{model}", layer="{layer}"):
    """A layer's activation artifact for the activation measures (rsaflow.jobs.kernel)."""
    return f"results/kernels/{kernel}/{model}/{layer}.h5"


def external_rdm_path(name="{name}"):
    return f"results/external/{name}.h5"


def second_order_path(file, analysis="{analysis}"):
    """``file``: matrix.h5, matrix.tsv, inference.tsv or pairs.h5."""
    return f"results/second_order/{analysis}/{file}"


def figure_path(file):
    """A figure: stimuli.png, rdms.png, stimulus_mds.png (and .pdf), or an analysis's
    {analysis}/heatmap.png and {analysis}/mds.png."""
    return f"results/figures/{file}"


# Snakemake does not track the modules a script imports. Each rule gets the sha256 of the library
# files its script imports (directly or not; derived from the source by rsaflow.deps) as a param:
# editing a module reruns exactly the rules that run it, without listing files as inputs.
# Each file's imports are cached by the sha256 of its bytes under .snakemake/rsaflow/.
IMPORTS = deps.ImportCache(filedigest.CACHE_DIR)


def library_files(script):
    return list(deps.library_files(ROOT / "scripts" / f"{script}.py", SRC, IMPORTS))


def code_digest(script):
    return provenance.code_digest(library_files(script))


# One idiom passes the config to the rules. params.spec is the canonical JSON of the slice a
# job depends on (rsaflow.config.dumps: reruns on a changed value, never on reordering), built
# by the function <rule>_spec below, which the rule names (Snakemake calls it with the wildcards).
def stimuli_spec(wildcards):
    return rsacfg.dumps(config["stimuli"])


def model_spec(wildcards):
    """One model's extraction slice (rsaflow.config.model_slice)."""
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


def model_layers():
    """Each model's layers, in the config's order (the outputs of its RDM job, rdm.jobs: model)."""
    out = {}
    for model, layer in BRANCHES:
        out.setdefault(model, []).append(layer)
    return out


def layer_expectations(wildcards):
    """{layer: its expected config slice} for one layer's RDM job (rdm.jobs: layer)."""
    return rsacfg.dumps({wildcards.layer: json.loads(layer_expectation(wildcards))})


def model_expectations(model):
    """{layer: its expected config slice} for every layer of a model (rdm.jobs: model)."""
    spec = rsacfg.model_slice(config, NORM, model)
    layers = model_layers()[model]
    return rsacfg.dumps({l: modelspec.layer_slice(spec, l) for l in layers})


def rdm_log(metric="{metric}", model="{model}", layer="{layer}"):
    return f"results/logs/rdm/{metric}/{model}/{layer}.log"


def rdm_spec(wildcards):
    """The metric is the wildcard's (one of the registry's, by the constraint); rdm.backend
    and rdm.device only for torch (rsaflow.kernels.spec_slice: NumPy slices as before).
    """
    return rsacfg.dumps(
        {
            "metric": wildcards.metric,
            "block": config["rdm"]["block"],
            **rsakernels.spec_slice(config["rdm"], "rdm"),
        }
    )


def external_rdm_spec(wildcards):
    """Every entry of external_rdms (the one external_rdm job handles them all)."""
    return rsacfg.dumps(EXTERNAL)


def tile_spec(wildcards):
    """A tile's slice: what its similarities depend on (not inference, not the tile count)."""
    spec = rsacfg.analysis_slice(ANALYSES[wildcards.analysis])
    drop = ("bootstrap", "permutations", "ci", "seed", "tiles")
    kern = rsakernels.spec_slice(config["second_order"], "second_order")
    return rsacfg.dumps({**{k: v for k, v in spec.items() if k not in drop}, **kern})


def second_order_spec(wildcards):
    kern = rsakernels.spec_slice(config["second_order"], "second_order")
    return rsacfg.dumps({**rsacfg.analysis_slice(ANALYSES[wildcards.analysis]), **kern})


def figures_spec(wildcards):
    return rsacfg.dumps(config["figures"])


def export_spec(wildcards):
    return rsacfg.dumps({"metric": MAIN_METRIC})


def effective_config_spec(wildcards):
    return rsacfg.dumps(config)


# The config's own files are local(): relative to the working directory, never under the path
# prefix of a module statement (README, "Use as a Snakemake module").
def checkpoint_input(wildcards):
    path = modelspec.checkpoint_path(NORM["models"][wildcards.model]["weights"])
    return [local(str(path))] if path else []


def stimulus_inputs(wildcards):
    """CIFAR10's files (unless downloading); a folder's images are tracked by STIMULUS_CONTENT."""
    return [local(str(p)) for p in rsacfg.cifar10_files(config["stimuli"])]


def external_sources():
    """Every entry's RDM file(s) (``path`` or a group's ``paths``) and ids file, in name order."""
    files = []
    for name in sorted(EXTERNAL):
        spec = EXTERNAL[name]
        files += spec["paths"] if "paths" in spec else [spec["path"]]
        files += [spec["ids"]] if spec.get("ids") else []
    return files


def external_content(wildcards):
    """The external files as one digest of their paths and bytes: a param, not inputs. (Snakemake
    records the checksum of every input once per output: 80 files of one job with 80 outputs
    were 6,400 checksums, 30 s at N = 800.) Per-file sha256s cached as for the stimuli.
    """
    return filedigest.content_digest(external_sources(), None, filedigest.CACHE_DIR)


def external_logs():
    """The external_rdm job's own log, then one log per entry (what that entry's work logged)."""
    return ["results/logs/external_rdm.log"] + [
        f"results/logs/external_rdm/{name}.log" for name in sorted(EXTERNAL)
    ]


def external_files():
    return [external_rdm_path(name) for name in sorted(EXTERNAL)]


def rdm_files(metric=MAIN_METRIC):
    return [rdm_path(metric, m, l) for m, l in BRANCHES]


def main_rdms():
    """The main metric's RDMs and the external ones: what the first-order figures and the export show."""
    return rdm_files() + external_files()


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


def labelled_inputs(analysis):
    """(label, file) of every input of an analysis, labelled as the second order labels them:
    its RDMs plus the external ones, or its per-layer activation artifacts."""
    spec = ANALYSES[analysis]
    if spec["artifact"] != "rdm":
        return [(f"{m}/{l}", kernel_path(spec["kernel"], m, l)) for m, l in BRANCHES]
    out = [(f"{m}/{l}", rdm_path(spec["metric"], m, l)) for m, l in BRANCHES]
    if spec["joins_external"]:
        out += [(f"external/{n}", external_rdm_path(n)) for n in sorted(EXTERNAL)]
        out += [(f"brain/{r}", brain_group_path(r)) for r in sorted(BRAIN)]
    return out


def second_order_inputs(wildcards):
    return [path for _, path in labelled_inputs(wildcards.analysis)]


# compare.tiles: B >= 1 splits an analysis's K x K matrix into tile jobs over B blocks of inputs,
# each input's block a hash of its model (rsaflow.second_order.tiling.block_of; an external RDM
# stands alone), so adding an input, a layer or a model changes the inputs of one block's tiles only.
def tile_blocks(analysis):
    """Each block's input files, in block order (empty blocks stay empty)."""
    labelled = labelled_inputs(analysis)
    members = tile_members([lab for lab, _ in labelled], ANALYSES[analysis]["tiles"])
    return [[labelled[i][1] for i in block] for block in members]


def tile_files(wildcards):
    """The tiles (i <= j, both blocks non-empty) the second order assembles; none when tiles is 0."""
    if not ANALYSES[wildcards.analysis]["tiles"]:
        return []
    full = [i for i, b in enumerate(tile_blocks(wildcards.analysis)) if b]
    return [
        second_order_path(f"tiles/{i}_{j}.h5", wildcards.analysis)
        for n, i in enumerate(full)
        for j in full[n:]
    ]


def tile_inputs(wildcards):
    blocks = tile_blocks(wildcards.analysis)
    return {"rows": blocks[int(wildcards.i)], "cols": blocks[int(wildcards.j)]}


def n_stimuli_estimate():
    """Stimuli the config selects (for memory estimates): per_class x classes."""
    s = config["stimuli"]
    classes = {"cifar10": 10, "digits": 10}.get(s["source"])
    if classes is None:
        classes = len({Path(f).parent.name for f in STIMULUS_FILES}) or 1
    per_class = s["per_class"] if s["per_class"] is not None else 1000
    return classes * per_class


def rdm_mem_mb(wildcards, attempt):
    """RDM job (rsaflow.jobs.rdm): 1.6 N^2 x 8 B + 2 x 8 N x block B + 300 MB. The NumPy path
    holds the N x N float64 RDM (+ row-step temporaries, <= 0.1 N^2 x 8 B), then its upper triangle
    and the ranks in the square's own memory (rsaflow.rdmfile.upper_triangle_in_place) plus chunk
    arrays: measured 0.984 GB at N = 10,000 (1.23 N^2 x 8 B; 1.377 GB before, bench_scale.py d).
    The torch backend ranks outside the square (+ 0.5 N^2 x 8 B): the request covers both.
    """
    n = n_stimuli_estimate()
    return (
        int(300 + (1.6 * n * n * 8 + 2 * n * config["rdm"]["block"] * 8) / 1e6)
        * attempt
    )


def kernel_mem_mb(wildcards, attempt):
    """Per-layer activation artifact (rsaflow.jobs.kernel): ~6 N^2 x 8 B + a column block + 300 MB."""
    n = n_stimuli_estimate()
    return (
        int(300 + (6 * n * n * 8 + 2 * n * config["rdm"]["block"] * 8) / 1e6) * attempt
    )


def method_mem_mb(spec, n):
    """What a method adds to a second-order or tile job beyond its chunks (MB), N stimuli: its
    registry entry's coefficient (rsaflow.methods.Method.mem), e.g. kendall_tau_a ~10 x 8 P for
    two vectors and the sort; shape, bures ~6 x 8 N^2 (two factors and an SVD); cosine_cov,
    corr_cov ~8 x 8 N^2 (one whole-RDM vector and its transients beside the chunk_mb / 2 of row
    vectors). P = N (N - 1) / 2."""
    return METHODS[spec["method"]].mem_mb(n)


def second_order_mem_mb(wildcards, attempt):
    """Streaming second order (rsaflow.jobs.second_order): chunk_mb + 48 K^2 B + 0.6 MB per
    open RDM file (K) + 300 MB + method_mem_mb; inference all K condensed vectors plus the
    (K, N, N) RDMs it takes, x2 for its resamples. Assembling tiles: 300 MB + 48 K^2 B.
    """
    spec = ANALYSES[wildcards.analysis]
    n = n_stimuli_estimate()
    k = len(labelled_inputs(wildcards.analysis))
    if spec["tiles"]:
        return int(300 + 48 * k * k / 1e6 + 0.6 * k) * attempt
    p = n * (n - 1) / 2
    mb = 300 + spec["chunk_mb"] + 48 * k * k / 1e6 + 0.6 * k + method_mem_mb(spec, n)
    if spec["bootstrap"] or spec["permutations"]:
        mb += (8 * k * p + 2 * 8 * k * n * n) / 1e6
    return int(mb) * attempt


def tile_mem_mb(wildcards, attempt):
    """A tile of R x C inputs: chunk_mb + 3 x 8 R C B + 0.6 MB per open file + 300 MB + method_mem_mb."""
    spec = ANALYSES[wildcards.analysis]
    rows, cols = tile_inputs(wildcards).values()
    mb = 300 + spec["chunk_mb"] + 24 * len(rows) * len(cols) / 1e6
    return (
        int(
            mb
            + 0.6 * (len(rows) + len(cols))
            + method_mem_mb(spec, n_stimuli_estimate())
        )
        * attempt
    )


def all_outputs():
    outputs = [
        figure_path("stimuli.png"),
        figure_path("rdms.png"),
        figure_path("stimulus_mds.png"),
        EXPORT,
        EFFECTIVE_CONFIG,
    ]
    for name, spec in ANALYSES.items():
        outputs.append(second_order_path("matrix.tsv", name))
        outputs += [figure_path(f"{name}/{f}") for f in ("heatmap.png", "mds.png")]
        # Model-versus-brain bars (rule brain_figure) where external groups join with a noise ceiling.
        ceiling = spec["joins_external"] and spec["method"] in NOISE_CEILING_METHODS
        if GROUPS and ceiling:
            outputs.append(figure_path(f"{name}/brain.png"))
    return outputs + brain_outputs()


# --- Brain regions from measured responses (brain.smk; rsaflow.jobs.brain_rdm) ---
def brain_rdm_path(region="{region}", subject="{subject}"):
    return f"results/brain/{region}/{subject}.h5"


def brain_group_path(region="{region}"):
    return f"results/brain/{region}.h5"


def brain_region(wildcards):
    if wildcards.region not in BRAIN:
        raise WorkflowError(f"no brain region {wildcards.region!r} in the config")
    return BRAIN[wildcards.region]


def brain_subject(wildcards):
    subjects = brain_region(wildcards)["subjects"]
    if wildcards.subject not in subjects:
        raise WorkflowError(
            f"no subject {wildcards.subject!r} in brain.{wildcards.region}.subjects"
        )
    return subjects[wildcards.subject]


def brain_subject_inputs(wildcards):
    """The subject's files (responses, mask, residuals, residuals_per_run) as named inputs."""
    entry = brain_subject(wildcards)
    files = {
        k: local(entry[k]) for k in ("responses", "mask", "residuals") if k in entry
    }
    if "residuals_per_run" in entry:
        files["residuals_per_run"] = [local(f) for f in entry["residuals_per_run"]]
    return files


def brain_spec(wildcards):
    """The region's settings a subject's RDM depends on (not the list of subjects)."""
    region = brain_region(wildcards)
    return rsacfg.dumps({k: v for k, v in region.items() if k != "subjects"})


def brain_files_spec(wildcards):
    return rsacfg.dumps(brain_subject(wildcards))


def brain_subject_rdms(wildcards):
    return [
        brain_rdm_path(wildcards.region, s)
        for s in sorted(brain_region(wildcards)["subjects"])
    ]


def evaluation_path(file, region="{region}"):
    """A region's evaluation: evaluation.h5, layers.tsv or pairs.tsv."""
    return f"results/evaluation/{region}/{file}"


def brain_eval_spec(wildcards):
    """The region's evaluate: slice, the layers' RDM metric filled in."""
    spec = dict(brain_region(wildcards)["evaluate"])
    spec["rdm_metric"] = spec["rdm_metric"] or MAIN_METRIC
    return rsacfg.dumps(spec)


def brain_rdm_mem_mb(wildcards, attempt):
    """brain_rdm (rsaflow.jobs.brain_rdm): 300 MB + rsaflow.responses.io.rdm_job_bytes from the
    subject's file headers (the responses as read, the noise estimate's C x C matrices under
    shrinkage, channel blocks of block_mb, 4 x 8 N^2 B); 300 MB + 4 x 8 N^2 B when a header cannot
    be read (the job then says why in one line)."""
    from rsaflow.responses.io import rdm_job_bytes

    n = n_stimuli_estimate()
    est = rdm_job_bytes(brain_subject(wildcards), brain_region(wildcards), n)
    return int(300 + (32 * n * n if est is None else est) / 1e6) * attempt


def brain_eval_mem_mb(wildcards, threads, attempt):
    """brain_eval (rsaflow.jobs.brain_eval): 300 MB + rsaflow.evaluation.job_bytes(K layers, S subjects,
    N, threads): ~6 x 8 (K + S) P B plus a block of pairs per thread."""
    from rsaflow.evaluation import job_bytes

    k = len(brain_eval_layers(wildcards))
    region = brain_region(wildcards)
    samples = region["evaluate"]["samples"]
    n = n_stimuli_estimate()
    return (
        int(300 + job_bytes(k, len(region["subjects"]), n, threads, samples) / 1e6)
        * attempt
    )


def brain_eval_layers(wildcards):
    metric = brain_region(wildcards)["evaluate"]["rdm_metric"] or MAIN_METRIC
    return rdm_files(metric)


def brain_outputs():
    """Each region's evaluation tables and model-comparison figure."""
    out = []
    for region in sorted(BRAIN):
        out += [evaluation_path(f, region) for f in ("layers.tsv", "pairs.tsv")]
        out.append(figure_path(f"evaluation/{region}.png"))
    return out
