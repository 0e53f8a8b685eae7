import os
import sys
from pathlib import Path

from snakemake.utils import validate

# The rsaflow package lives in src/ beside this workflow. Jobs import it through PYTHONPATH
# (this workflow's copy wins over any installed one), and the DAG-build code imports it here.
SRC = Path(workflow.basedir) / "src"
sys.path.insert(0, str(SRC))
# (Setting, not requiring, the variable: hence update() rather than an envvars directive.)
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
)

from rsaflow import config as rsacfg  # noqa: E402
from rsaflow.errors import ConfigError  # noqa: E402

validate(config, schema="../schemas/config.schema.yaml")
try:
    NORM = rsacfg.normalise(config)
    STIMULUS_FILES = rsacfg.stimulus_files(config["stimuli"])
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None

BRANCHES = NORM["branches"]


wildcard_constraints:
    model=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    layer=r"[A-Za-z0-9][A-Za-z0-9_.-]*",


# Library modules each step imports: rules take them as inputs, so editing the code behind a
# step reruns exactly that step's jobs (Snakemake does not track imported modules itself).
_BASE = [
    "__init__.py",
    "errors.py",
    "h5io.py",
    "provenance.py",
    "jobs/__init__.py",
    "jobs/common.py",
]
LIBRARY = {
    "stimuli": ["stimuli.py", "jobs/stimuli.py"],
    "stimulus_grid": ["figures.py", "rdm.py", "jobs/stimuli.py"],
    "activations": ["extract.py", "config.py"],
    "rdm": ["rdm.py", "compare.py", "jobs/rdm.py"],
    "second_order": ["compare.py", "jobs/second_order.py"],
    "effective_config": ["config.py"],
    "figures": [
        "figures.py",
        "rdm.py",
        "compare.py",
        "jobs/figures.py",
        "jobs/second_order.py",
        "jobs/stimuli.py",
    ],
}


def library_files(step):
    return [str(SRC / "rsaflow" / name) for name in _BASE + LIBRARY[step]]


def slice_json(section):
    """A rule's config slice as canonical JSON: reruns on a changed value, never on reordering."""
    return rsacfg.dumps(config[section])


def activation_spec(wildcards):
    if (wildcards.model, wildcards.layer) not in BRANCHES:
        raise WorkflowError(
            f"no layer {wildcards.layer!r} of model {wildcards.model!r} in the config"
        )
    return rsacfg.dumps(
        rsacfg.activation_slice(config, NORM, wildcards.model, wildcards.layer)
    )


def checkpoint_input(wildcards):
    path = rsacfg.checkpoint_path(NORM["models"][wildcards.model]["weights"])
    return [path] if path else []


def n_stimuli_estimate():
    """Stimuli the config selects (for memory estimates): per_class x classes."""
    s = config["stimuli"]
    classes = {"cifar10": 10, "digits": 10}.get(s["source"])
    if classes is None:
        classes = len({Path(f).parent.name for f in STIMULUS_FILES}) or 1
    per_class = s["per_class"] if s["per_class"] is not None else 1000
    return classes * per_class


def rdm_mem_mb(wildcards, attempt):
    """RDM job: N x N float64 arrays (about 4 live at the peak) plus a column block, plus 300 MB."""
    n = n_stimuli_estimate()
    return (
        int(300 + (4 * n * n * 8 + 2 * n * config["rdm"]["block"] * 8) / 1e6) * attempt
    )


def second_order_mem_mb(wildcards, attempt):
    """Second order: K unit vectors of N(N-1)/2 float64, twice, plus 300 MB."""
    n = n_stimuli_estimate()
    return int(300 + 2 * len(BRANCHES) * n * (n - 1) / 2 * 8 / 1e6) * attempt


def rdm_files():
    return [f"results/rdms/{m}/{l}.h5" for m, l in BRANCHES]


def all_outputs():
    return [
        "results/figures/stimuli.png",
        "results/figures/rdms.png",
        "results/figures/second_order.png",
        "results/figures/mds.png",
        "results/second_order/matrix.tsv",
        "results/config.yaml",
    ]
