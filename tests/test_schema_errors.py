"""Schema-level config mistakes: one line each naming the key path, the bad value and what is allowed;
defaults filled as snakemake.utils.validate fills them; the GPU declaration of extraction jobs."""

import copy

import pytest

from conftest import REPO
from rsaflow import schema
from rsaflow.errors import ConfigError, RsaflowError

SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"
SCHEMA = schema.load_schema(SCHEMA_PATH)
BASE = {
    "stimuli": {"source": "digits", "per_class": 2},
    "models": {
        "resnet18": {"weights": "none", "layers": {"pool": "avgpool", "l3": {"node": "layer3", "reduce": "mean"}}},
        "alexnet": {"weights": "none", "layers": ["features.0", "features.3"]},
    },
}


def errors_of(edit):
    config = copy.deepcopy(BASE)
    edit(config)
    return [str(e) for e in schema.schema_errors(config, SCHEMA)]


def set_in(config, path, value):
    *parents, last = path
    for key in parents:
        config = config.setdefault(key, {})
    config[last] = value


# (edit, key path, bad value as shown, what must be named as allowed)
MISTAKES = {
    "bad-enum-inside-oneOf": (lambda c: c["models"]["resnet18"]["layers"]["l3"].update(reduce="median"),
                              "models.resnet18.layers.l3.reduce", "'median'", "flatten, cls, mean"),
    "enum-typo": (lambda c: set_in(c, ["rdm", "metric"], "cosin"),
                  "rdm.metric", "'cosin'", "euclidean, sqeuclidean, correlation, cosine; close matches: cosine"),
    "wrong-type": (lambda c: set_in(c, ["extraction", "batch_size"], "16"),
                   "extraction.batch_size", "'16'", "an integer >= 1"),
    "negative-batch-size": (lambda c: set_in(c, ["extraction", "batch_size"], -4),
                            "extraction.batch_size", "-4", "an integer >= 1"),
    "unknown-top-key": (lambda c: c.update(modles=c.pop("models")) or c.update(models=BASE["models"]),
                        "modles", "'modles'", "close matches: models"),
    "unknown-nested-key": (lambda c: set_in(c, ["extraction", "batchsize"], 8),
                           "extraction.batchsize", "'batchsize'", "close matches: batch_size"),
    "layers-wrong-shape": (lambda c: c["models"]["alexnet"].update(layers=5), "models.alexnet.layers", "5",
                           "a mapping label: node or label: {node: <node>, reduce: flatten|cls|mean|mean_patches|last} | "
                           "a glob pattern over node names | a list of distinct node names"),
    "layer-spec-wrong-shape": (lambda c: c["models"]["resnet18"]["layers"].update(bad=["avgpool"]),
                               "models.resnet18.layers.bad", '["avgpool"]', "a graph node name | a mapping {node: "),
    "layer-spec-misspelt-node": (lambda c: c["models"]["resnet18"]["layers"].update(bad={"nod": "avgpool"}),
                                 "models.resnet18.layers.bad.nod", "'nod'", "allowed: node, reduce, layout; close matches: node"),
    "layer-list-repeats": (lambda c: c["models"]["alexnet"].update(layers=["features.0", "features.0"]),
                           "models.alexnet.layers", '["features.0", "features.0"]', "a list of distinct node names"),
    "layer-list-bad-name": (lambda c: c["models"]["alexnet"].update(layers=["features/0"]),
                            "models.alexnet.layers[0]", "'features/0'", "a name of letters, digits"),
    "external-rdm-misspelt": (lambda c: c.update(external_rdms={"brain": {"paht": "it.npy"}}),
                              "external_rdms.brain.paht", "'paht'", "allowed: path, paths, ids, order; close matches: path, paths"),
    "external-rdm-plain-path": (lambda c: c.update(external_rdms={"brain": "it.npy"}),
                                "external_rdms.brain", "'it.npy'", "a mapping {path: <file>}"),
    "external-group-of-one": (lambda c: c.update(external_rdms={"IT": {"paths": ["s1.npy"]}}),
                              "external_rdms.IT.paths", '["s1.npy"]', "a list of 2 or more"),
    "external-path-and-paths": (lambda c: c.update(external_rdms={"IT": {"path": "a.npy", "paths": ["b", "c"]}}),
                                "external_rdms.IT", '{"path": "a.npy", "paths": ["b", "c"]}', "{paths: [<file>, ...]} (a group)"),
    "bad-model-key": (lambda c: c["models"].update({"res/net": c["models"].pop("alexnet")}),
                      "models.res/net", "'res/net'", "a name of letters, digits, _ . - starting with a letter or digit"),
    "ci-out-of-range": (lambda c: set_in(c, ["compare", "ci"], 1.5), "compare.ci", "1.5", "a number > 0 and < 1"),
    "size-one-number": (lambda c: set_in(c, ["stimuli", "size"], 32), "stimuli.size", "32",
                        "null or a list of 2 items, each an integer >= 1"),
    "analysis-bad-metric": (lambda c: c.update(analyses={"corr": {"metric": "pearson"}}),
                            "analyses.corr.metric", "'pearson'", "euclidean, sqeuclidean, correlation, cosine"),
    "gpu-not-a-choice": (lambda c: set_in(c, ["extraction", "gpu"], "yes"), "extraction.gpu", "'yes'", "auto, true, false"),
    "device-pattern": (lambda c: set_in(c, ["extraction", "device"], "gpu"), "extraction.device", "'gpu'",
                       "auto, cpu, mps, cuda or cuda:<index>"),
    "no-models": (lambda c: c.update(models={}), "models", "{}", "a mapping with at least 1 entry"),
}


@pytest.mark.parametrize("name", list(MISTAKES))
def test_one_line_names_key_value_and_allowed(name):
    edit, key, value, allowed = MISTAKES[name]
    lines = errors_of(edit)
    assert lines and all("\n" not in line for line in lines)
    mine = [line for line in lines if line.startswith(f"config error at {key}: ")]
    assert len(mine) == 1, lines  # (a misspelt required key also reports the key as missing)
    line = mine[0]
    assert f"{value} is not allowed; allowed: " in line
    assert allowed in line


def test_missing_required_key_names_it_and_what_it_takes():
    """weights is required for torchvision (and timm, open_clip), optional for the sources with a
    default (rsaflow.sources): checked where the entry is normalised, one line."""
    from rsaflow.config import model_spec
    from rsaflow.errors import ConfigError

    config = copy.deepcopy(BASE)
    config["models"]["alexnet"].pop("weights")
    assert errors_of(lambda c: c["models"]["alexnet"].pop("weights")) == []
    with pytest.raises(ConfigError) as info:
        model_spec("alexnet", config["models"]["alexnet"])
    assert str(info.value) == ("config error at models.alexnet.weights: required key is missing (source torchvision); "
                               "allowed: a torchvision weights name (e.g. IMAGENET1K_V1), DEFAULT, none, or a checkpoint path")


def test_every_mistake_reported_once_each_sorted():
    def edit(c):
        c["extraction"] = {"batch_size": 0, "precision": "half"}
        c["models"]["resnet18"]["layers"]["l3"]["reduce"] = "max"

    lines = errors_of(edit)
    assert [line.split(":")[0] for line in lines] == [
        "config error at extraction.batch_size", "config error at extraction.precision",
        "config error at models.resnet18.layers.l3.reduce"]
    with pytest.raises(RsaflowError) as info:
        config = copy.deepcopy(BASE)
        edit(config)
        schema.validate(config, SCHEMA_PATH)
    assert str(info.value).splitlines() == lines


def test_validate_raises_the_config_error_itself():
    config = copy.deepcopy(BASE)
    config["rdm"] = {"metric": "manhattan"}
    with pytest.raises(ConfigError) as info:
        schema.validate(config, SCHEMA_PATH)
    assert info.value.key == "rdm.metric"


@pytest.mark.parametrize("config", [
    BASE,
    {**BASE, "extraction": {"gpu": False}, "analyses": {"c": {"metric": "correlation", "method": "pearson"}},
     "external_rdms": {"brain": {"path": "x.npy"}}},
])
def test_defaults_filled_as_snakemake_validate_fills_them(config, tmp_path):
    """Same config after our validate as after snakemake.utils.validate(set_default=True)."""
    snakemake_utils = pytest.importorskip("snakemake.utils")
    ours, theirs = copy.deepcopy(config), copy.deepcopy(config)
    schema.validate(ours, SCHEMA_PATH)
    snakemake_utils.validate(theirs, str(SCHEMA_PATH))
    assert ours == theirs
    assert ours != config  # defaults were filled in


def test_the_schema_is_a_valid_draft_2020_12_schema_and_reads_the_same_with_either_yaml_loader():
    import yaml
    from jsonschema import Draft202012Validator

    loaded = schema.load_schema(SCHEMA_PATH)
    Draft202012Validator.check_schema(loaded)  # raises SchemaError otherwise
    pure = yaml.load(SCHEMA_PATH.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    raw = yaml.load(SCHEMA_PATH.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert raw == pure and "<<" not in str(raw)


def test_the_config_files_of_the_repository_are_valid():
    import yaml

    for path in [REPO / "config.yaml", *sorted((REPO / "workflow" / "config").glob("*.yaml"))]:
        schema.validate(yaml.safe_load(path.read_text()), SCHEMA_PATH)


# ---- the GPU declaration of extraction jobs ------------------------------------------------------


@pytest.mark.parametrize("gpu, device, declared, visible, expected", [
    (True, "cpu", 0, 0, 1),      # explicit: always
    (False, "cuda", 4, 2, 0),
    ("auto", "auto", None, 0, 0),  # laptop, default profile: no GPU declared, none visible
    ("auto", "auto", None, 1, 1),  # GPU workstation, default profile
    ("auto", "auto", 100, 0, 1),   # SLURM profile on a login node without GPU
    ("auto", "auto", 0, 2, 0),     # profile declares gpu=0: a CPU-only cluster
    ("auto", "cpu", None, 2, 0),   # the job never uses a GPU
    ("auto", "cuda:1", None, 2, 1),
])
def test_gpu_resource(gpu, device, declared, visible, expected):
    assert schema.gpu_resource({"gpu": gpu, "device": device}, {"declared": declared, "visible": visible}) == expected


@pytest.mark.parametrize("environ, folders, expected", [
    ({}, 0, 0),
    ({}, 2, 2),
    ({"CUDA_VISIBLE_DEVICES": ""}, 2, 0),
    ({"CUDA_VISIBLE_DEVICES": "-1"}, 2, 0),
    ({"CUDA_VISIBLE_DEVICES": "0,2"}, 4, 2),
    ({"CUDA_VISIBLE_DEVICES": "1,-1,2"}, 4, 1),  # CUDA ignores everything after an invalid entry
    ({"CUDA_VISIBLE_DEVICES": "GPU-8a1b,MIG-3c"}, 0, 2),
])
def test_visible_gpus(tmp_path, environ, folders, expected):
    for i in range(folders):
        (tmp_path / f"0000:0{i}:00.0").mkdir()
    assert schema.visible_gpus(environ, tmp_path) == expected
    assert schema.visible_gpus({}, tmp_path / "absent") == 0


def test_run_env_reads_the_declared_gpu_resource():
    class Resource:
        def __init__(self, value):
            self.value = value

    class Workflow:
        global_resources = {"_cores": Resource(4), "gpu": Resource(3)}

    assert schema.run_env(Workflow(), {"CUDA_VISIBLE_DEVICES": "0"}) == {"declared": 3, "visible": 1}
    Workflow.global_resources = {"_cores": Resource(4)}
    assert schema.run_env(Workflow(), {"CUDA_VISIBLE_DEVICES": ""}) == {"declared": None, "visible": 0}


# ---- through Snakemake ---------------------------------------------------------------------------


def gpu_per_rule(proc) -> dict[str, set[str]]:
    """rule -> the gpu= values its jobs declare in a dry run ('' when none)."""
    import re

    seen: dict[str, set[str]] = {}
    for block in re.split(r"\n(?=\s*(?:local)?rule \w+:)", proc.stdout + proc.stderr):
        m = re.match(r"\s*(?:local)?rule (\w+):", block)
        if m and m.group(1) != "all":
            gpu = re.search(r"resources: .*?\bgpu=(\d+)", block)
            seen.setdefault(m.group(1), set()).add(gpu.group(1) if gpu else "")
    return seen


@pytest.mark.slow
def test_gpu_declared_only_where_the_run_provides_one(workflow, cifar_root, monkeypatch):
    """Default profile on a machine without a visible GPU: no extraction job declares one (so no
    per-job warning); the SLURM profile: every extraction job does, no other job; gpu=0 declared by
    the SLURM profile's RSAFLOW_SLURM_GPUS=0: none."""
    from conftest import tiny_config

    config = tiny_config(cifar_root)
    config["extraction"].update(gpu="auto", device="auto")
    workflow.write_config(config)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    local = gpu_per_rule(workflow.run("-n"))
    assert local["activations"] == {"0"}
    slurm_profile = str(workflow.src / "profiles" / "slurm")
    slurm = gpu_per_rule(workflow.run("-n", "--workflow-profile", slurm_profile))
    assert slurm["activations"] == {"1"}
    # no other job asks for one (the RDM and second-order rules declare gpu=0 on the NumPy backend)
    assert all(v <= {"", "0"} for rule, v in slurm.items() if rule != "activations"), slurm
    monkeypatch.setenv("RSAFLOW_SLURM_GPUS", "0")
    assert gpu_per_rule(workflow.run("-n", "--workflow-profile", slurm_profile))["activations"] == {"0"}
