"""The config schema at DAG-build time: one-line errors, and the GPU declaration of extraction jobs.

``validate`` does what ``snakemake.utils.validate(config, schema, set_default=True)`` does (JSON
schema draft 2020-12, every missing key that has a ``default:`` filled into ``config`` in place)
but reports each schema violation as one line naming the key path, the bad value and what is
allowed, also inside ``oneOf``/``anyOf`` where jsonschema only says "is not valid under any of
the given schemas". Pure Python (jsonschema, PyYAML); no numpy, no torch.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from rsaflow.errors import ConfigError, RsaflowError

#: How a JSON type reads in a message.
TYPE_WORDS = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
              "object": "a mapping", "array": "a list", "null": "null"}
#: Bounds as they read after a number: (schema keyword, comparison).
BOUNDS = (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))


#: ``x-registry`` values of the schema and the names they stand for (rsaflow.methods, standard library).
REGISTRIES = {"methods": ("rsaflow.methods", "METHODS"), "metrics": ("rsaflow.methods", "METRICS")}


def load_schema(path) -> dict:
    """The schema file (YAML or JSON; YAML merge keys resolved) as a dict, every ``x-registry: <name>``
    given ``enum:`` the registry's names in order (:data:`REGISTRIES`), so that the schema never
    lists them itself."""
    import importlib

    import yaml

    # libyaml's loader where PyYAML has it (10x faster on this file; the same data, tested)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    schema = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=loader)
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "x-registry" in node:
                module, name = REGISTRIES[node["x-registry"]]
                node["enum"] = list(getattr(importlib.import_module(module), name))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return schema


def load_config_file(path) -> dict:
    """A config file (YAML or JSON) as a dict; a syntax error is one RsaflowError naming the file,
    the line and the column (1-based), e.g. ``my.yaml:4:3: YAML syntax error: ...``."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RsaflowError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        what = "; ".join(str(x) for x in (getattr(exc, "context", None), getattr(exc, "problem", None)) if x)
        raise RsaflowError(f"{where}: YAML syntax error: {what or exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RsaflowError(f"{path}: a config must be a mapping of sections (stimuli:, models:, ...), "
                           f"got {type(data).__name__}")
    return data


def _validator_class():
    """Draft 2020-12 validator whose ``properties`` first fills missing keys from their ``default``.

    The same extension as snakemake.utils.validate (from jsonschema's FAQ): defaults are set
    before the properties are checked, so a default mapping (``extraction: {}``) is filled in turn.
    """
    from jsonschema import Draft202012Validator, validators

    check_properties = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(key, sub["default"])
        yield from check_properties(validator, properties, instance, schema)

    return validators.extend(Draft202012Validator, {"properties": set_defaults})


def schema_errors(config: dict, schema: dict, set_default: bool = True) -> list[ConfigError]:
    """Every violation of ``schema`` by ``config`` as a ConfigError, one line each, sorted by key path.

    With ``set_default`` (as Snakemake's validate), missing keys with a default are filled into
    ``config`` in place while checking. ``schema`` is taken to be a valid draft 2020-12 schema
    (the workflow's is checked by the test suite, not on every DAG build: that check costs more
    than the validation).
    """
    from jsonschema import Draft202012Validator

    cls = _validator_class() if set_default else Draft202012Validator
    found = {}
    for error in cls(schema).iter_errors(config):
        for key, message in _explain(error):
            found.setdefault((key, message), ConfigError(key, message))
    return [found[k] for k in sorted(found)]


def validate(config: dict, schema, set_default: bool = True) -> None:
    """Check ``config`` against ``schema`` (a dict or a path), filling defaults in place.

    Raises ConfigError (one line) for one violation, RsaflowError with one such line per
    violation for several.
    """
    errors = schema_errors(config, schema if isinstance(schema, dict) else load_schema(schema), set_default)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise RsaflowError("\n".join(str(e) for e in errors))


# ---- one error, one line -----------------------------------------------------------------------


def key_path(parts) -> str:
    """``models.alexnet.layers.fc7``; list positions as ``size[1]``; the whole config as ``config``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "config"


def show(value, width: int = 60) -> str:
    """A config value as it would be written: strings quoted, true/false/null, short JSON otherwise."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def _explain(error) -> list[tuple[str, str]]:
    """(key path, message) lines for one jsonschema error, descending into oneOf/anyOf."""
    path = list(error.absolute_path)
    if error.validator in ("oneOf", "anyOf") and error.context:
        return _explain_choice(error)
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = list(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in known]
        return [(key_path([*path, k]), _unknown_key(k, known)) for k in extra]
    if error.validator == "required":
        props = error.schema.get("properties", {})
        missing = [k for k in error.validator_value if k not in error.instance]
        return [(key_path([*path, k]), f"required key is missing; allowed: {allowed(props.get(k, {}))}")
                for k in missing]
    if "propertyNames" in error.schema_path:
        # jsonschema checks a key against propertyNames as if it were a value, at the mapping's path
        return [(key_path([*path, error.instance]), f"key {show(error.instance)} is not allowed; allowed: "
                 f"{allowed(error.schema)}")]
    message = f"{show(error.instance)} is not allowed; allowed: {allowed(error.schema)}"
    if error.validator == "enum" and isinstance(error.instance, str):
        message += _close_matches(error.instance, [v for v in error.validator_value if isinstance(v, str)])
    return [(key_path(path), message)]


def _close_matches(word: str, words: list[str]) -> str:
    close = difflib.get_close_matches(word, words, n=3, cutoff=0.6)
    return f"; close matches: {', '.join(close)}" if close else ""


def _unknown_key(key: str, known: list[str]) -> str:
    return f"unknown key {show(key)} is not allowed; allowed: {', '.join(known) or 'none'}" + _close_matches(str(key), known)


def _explain_choice(error) -> list[tuple[str, str]]:
    """A value that fits none of the alternatives: explain it against the alternative meant.

    The alternative meant is the only one whose type the value has (a mapping where a mapping, a
    string or a list of nodes is allowed); failing that, jsonschema's best match, when it finds one
    deeper than the choice itself; failing that, the value and every alternative.
    """
    from jsonschema.exceptions import best_match

    branches: dict[int, list] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [errs for errs in branches.values()
               if not any(e.validator == "type" and not e.relative_path for e in errs)]
    if len(fitting) > 1:  # several of that type: the one whose shape fits, failing only inside
        nested = [errs for errs in fitting if all(e.relative_path for e in errs)]
        fitting = nested if len(nested) == 1 else fitting
    if len(fitting) == 1:
        return [line for sub in fitting[0] for line in _explain(sub)]
    best = best_match(error.context)
    if best is not None and len(best.absolute_path) > len(error.absolute_path):
        return _explain(best)
    path = key_path(error.absolute_path)
    return [(path, f"{show(error.instance)} is not allowed; allowed: {allowed(error.schema)}")]


def allowed(schema: Mapping) -> str:
    """What ``schema`` accepts, in words: its ``title`` if it has one, else enum values, else the
    type with its bounds (``an integer >= 1``), alternatives joined by ``|``."""
    if "title" in schema:
        return schema["title"]
    if "enum" in schema:
        return ", ".join(v if isinstance(v, str) else show(v) for v in schema["enum"])
    if "const" in schema:
        return show(schema["const"])
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " | ".join(allowed(s) for s in schema[key])
    types = schema.get("type", [])
    types = sorted([types] if isinstance(types, str) else types, key=lambda t: t != "null")  # "null or a list ..."
    return " or ".join(_describe_type(t, schema) for t in types) or "any value"


def _describe_type(kind: str, schema: Mapping) -> str:
    words = TYPE_WORDS.get(kind, kind)
    if kind in ("integer", "number"):
        bounds = [f"{op} {schema[k]}" for k, op in BOUNDS if k in schema]
        return " ".join([words, " and ".join(bounds)]).strip()
    if kind == "string":
        if schema.get("minLength", 0) >= 1:
            words = "a non-empty string"
        return f"{words} matching {schema['pattern']}" if "pattern" in schema else words
    if kind == "array":
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        count = f"{lo} items" if lo is not None and lo == hi else (f"at least {lo} items" if lo else "items")
        each = f", each {allowed(schema['items'])}" if "items" in schema else ""
        unique = ", without repeats" if schema.get("uniqueItems") else ""
        return f"a list of {count}{each}{unique}"
    if kind == "object":
        props = list(schema.get("properties", {}))
        keys = f" with keys {', '.join(props)}" if props else ""
        least = schema.get("minProperties")
        return f"{words}{keys}" + (f" with at least {least} entry" if least else "")
    return words


# ---- the GPU declaration of extraction jobs ----------------------------------------------------


def visible_gpus(environ: Mapping | None = None, driver_dir="/proc/driver/nvidia/gpus") -> int:
    """How many CUDA GPUs this process can see, without importing torch.

    ``CUDA_VISIBLE_DEVICES`` when set (CUDA's rule: the list ends at the first empty or negative
    entry; SLURM sets it in jobs given GPUs), else the GPUs of the NVIDIA driver (one folder each
    in /proc/driver/nvidia/gpus on Linux); 0 elsewhere (Apple's MPS is not a declared GPU).
    """
    environ = os.environ if environ is None else environ
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        count = 0
        for entry in listed.split(","):
            if not entry.strip() or entry.strip().startswith("-"):
                break
            count += 1
        return count
    folder = Path(driver_dir)
    return sum(1 for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else 0


def run_env(workflow, environ: Mapping | None = None) -> dict:
    """What the run provides, for ``gpu_resource``: ``declared``, the global ``gpu`` resource of the
    run (profile ``resources:`` or ``--resources gpu=N``; None when not declared), and ``visible``,
    the GPUs this process sees (``visible_gpus``)."""
    declared = getattr(workflow, "global_resources", {}).get("gpu")
    declared = getattr(declared, "value", declared)  # Snakemake 9 wraps values in Resource
    return {"declared": None if declared is None else int(declared), "visible": visible_gpus(environ)}


def gpu_resource(extraction_cfg: Mapping, env: Mapping) -> int:
    """``resources: gpu=`` of an extraction job: 1 where the run provides a GPU, else 0.

    ``extraction.gpu``: true -> 1, false -> 0; ``auto`` -> 0 if ``extraction.device`` is cpu;
    else, when the run declares a global ``gpu`` resource (``env['declared']``; profiles/slurm
    does), 1 if it is at least 1; when it declares none (the default profile, or inside a cluster
    job, to which Snakemake does not pass global resources), 1 if a GPU is visible here
    (``env['visible']``). So a laptop declares no GPU, a GPU workstation and a SLURM run do.
    """
    choice = extraction_cfg.get("gpu", "auto")
    if choice is True or choice is False:
        return int(choice)
    if choice != "auto":
        raise ConfigError("extraction.gpu", f"{show(choice)} is not allowed; allowed: auto, true, false")
    if extraction_cfg.get("device", "auto") == "cpu":
        return 0
    if env.get("declared") is not None:
        return int(env["declared"] >= 1)
    return int(env.get("visible", 0) > 0)
