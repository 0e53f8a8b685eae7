"""What the model sources offer, for config checks at DAG-build time: architectures, weights, layers.

Listing them needs torch (2 s and ~700 MB to import), which the Snakemake process should not
carry; so they are computed once per torchvision and torch version in a subprocess and cached as
JSON in the user's cache (:func:`cache_dir`), shared by every working directory: what torchvision
offers depends on its version and torch's alone. This module itself never imports torch. When
torch is not installed where Snakemake runs (e.g. ``--sdm conda`` with torch only in the job
environment) the checks are skipped here and happen at the start of each extraction job instead.

The other sources (rsaflow.sources) are listed the same way, per source, library and torch version
(:func:`load_source_catalogs`; a python factory per file sha256, a Hugging Face directory per its
config.json), by ``python -m rsaflow.sources.lister``, and cached in the working directory's
``.snakemake/rsaflow/``: their entries can name the project's own files, whose imports the key
does not cover; where a library is not installed beside Snakemake, its models are checked at the
start of their jobs.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

from rsaflow import atomic, sources
from rsaflow.errors import ConfigError, RsaflowError
from rsaflow.modelspec import check_arch, check_weights, select_node

_LISTER = r"""
import json, sys
import torch, torchvision
from torchvision.models import get_model, get_model_weights, list_models
from torchvision.models.feature_extraction import get_graph_node_names
want = json.loads(sys.argv[1])
out = {"archs": sorted(list_models(module=torchvision.models)), "weights": {}, "nodes": {}}
for arch in want:
    if arch not in out["archs"]:
        continue
    out["weights"][arch] = sorted(get_model_weights(arch).__members__)
    with torch.device("meta"):  # no parameter memory or initialisation: tracing needs neither
        model = get_model(arch, weights=None).eval()
    out["nodes"][arch] = get_graph_node_names(model)[1]
print(json.dumps(out))
"""


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def torchvision_version() -> str | None:
    return _version("torchvision")


def cache_dir() -> Path:
    """The torchvision catalog's folder: ``$RSAFLOW_CACHE_DIR``, else ``$XDG_CACHE_HOME/rsaflow``,
    else ``~/.cache/rsaflow``. Its file is named by the torchvision and torch versions it lists,
    so every working directory and environment can share it."""
    if os.environ.get("RSAFLOW_CACHE_DIR"):
        return Path(os.environ["RSAFLOW_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "rsaflow"


def _read(path: Path, empty: dict) -> dict:
    """The cached catalog at ``path``; ``empty`` where there is none or it cannot be parsed (listed again)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return empty


def _write(path: Path, catalog: dict) -> None:
    """:func:`rsaflow.atomic.write_text` (concurrent DAG builds share the folder). A folder that
    cannot be written costs a listing per DAG build, nothing else: a warning, no error."""
    try:
        atomic.write_text(path, json.dumps(catalog))
    except OSError as exc:
        print(f"rsaflow: cannot keep the model catalog in {path.parent} ({exc.strerror}); set "
              f"RSAFLOW_CACHE_DIR to a writable folder to list models once per library version", file=sys.stderr)


def load_catalog(archs: list[str], folder: Path) -> dict | None:
    """Architectures, weights names and graph nodes of ``archs``; cached in ``folder`` (normally
    :func:`cache_dir`) per torchvision and torch version.

    Returns None when torchvision is not installed for this Python.
    """
    version = torchvision_version()
    if version is None:
        return None
    path = folder / f"torchvision-{version}-torch-{_version('torch')}.json"
    catalog = _read(path, {"archs": None, "weights": {}, "nodes": {}})
    missing = [a for a in archs if a not in catalog["nodes"] and (catalog["archs"] is None or a in catalog["archs"])]
    if missing or catalog["archs"] is None:
        proc = subprocess.run([sys.executable, "-c", _LISTER, json.dumps(sorted(set(missing)))],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RsaflowError(f"listing torchvision's models failed: {proc.stderr.strip().splitlines()[-1:]}")
        new = json.loads(proc.stdout)
        catalog["archs"] = new["archs"]
        catalog["weights"].update(new["weights"])
        catalog["nodes"].update(new["nodes"])
        _write(path, catalog)
    return catalog


def torchvision_archs(models: dict) -> dict:
    """``{model key: arch}`` of the config's torchvision entries (the default source)."""
    return {k: m.get("arch", k) for k, m in models.items() if m.get("source", sources.DEFAULT_SOURCE) ==
            sources.DEFAULT_SOURCE}


def check_archs(archs: dict, catalog: dict) -> None:
    """:func:`check_arch` for each ``{model key: arch}``."""
    for key, arch in archs.items():
        check_arch(arch, catalog["archs"], f"models.{key}.arch")


def check_models(models: dict, catalog: dict) -> None:
    """ConfigError for the first unknown architecture, weights name or graph node in ``models``.

    ``models``: normalised model specs (rsaflow.config.normalise()["models"]).
    """
    models = {k: s for k, s in models.items() if "source" not in s}  # torchvision's (rsaflow.config.model_spec)
    check_archs({key: spec["arch"] for key, spec in models.items()}, catalog)
    for key, spec in models.items():
        arch = spec["arch"]
        check_weights(spec["weights"], arch, catalog["weights"][arch], f"models.{key}.weights")
        for label, layer in spec["layers"].items():
            select_node(layer["node"], catalog["nodes"][arch], arch, f"models.{key}.layers.{label}")


def _entry(key: str, value: dict, record) -> tuple[str, dict]:
    """(cache id, spec to build) of a raw config entry of a non-default source."""
    arch = value.get("arch", key)
    spec = {"arch": arch, **{k: value[k] for k in ("layers_by", "trust_remote_code") if k in value}}
    extra = ""
    if record.factory:
        path = sources.factory_file(arch, f"models.{key}.arch")
        extra = sources.file_digest(path) if path is not None else ""
    elif (Path(arch).expanduser() / "config.json").is_file():  # a save_pretrained directory
        extra = sources.file_digest(Path(arch).expanduser() / "config.json")
    return json.dumps([spec, extra], sort_keys=True), spec


def _start(request: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rsaflow.sources.lister", json.dumps(request)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _answer(name: str, proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RsaflowError(f"listing the models of source {name} failed: {err.strip().splitlines()[-1:]}")
    return json.loads(out.strip().splitlines()[-1])


def _wanted(models: dict) -> dict:
    """``{source: {model key: (cache id, spec)}}`` of the entries the catalog can list here."""
    wanted: dict = {}
    for key, value in models.items():
        record = sources.get(value.get("source", sources.DEFAULT_SOURCE), f"models.{key}.source")
        if record.name != sources.DEFAULT_SOURCE and sources.installed(record):
            wanted.setdefault(record.name, {})[key] = _entry(key, value, record)
    return wanted


def load_source_catalogs(models: dict, folder: Path) -> dict:
    """``{model key: {"layers_by", "nodes", "archs", "searched", "source"}}`` for the config's
    entries of sources other than torchvision whose library is installed here; cached per source,
    library and torch version under ``folder`` (the working directory's cache; the sources
    missing from it are listed by concurrent subprocesses). ConfigError (with close matches) for an
    unknown architecture or factory."""
    wanted, caches, running, torch = _wanted(models), {}, {}, _version("torch")
    for name, entries in sorted(wanted.items()):
        library = sources.library_version(sources.SOURCES[name]) or "user-code"
        path = folder / f"{name}-{library}-torch-{torch}.json"
        caches[name] = (path, _read(path, {"archs": None, "entries": {}}))
        missing = {ident: spec for ident, spec in entries.values() if ident not in caches[name][1]["entries"]}
        if missing:
            running[name] = _start({"source": name, "archs": caches[name][1]["archs"] is None, "entries": missing})
    for name, proc in running.items():
        new, (path, cached) = _answer(name, proc), caches[name]
        cached["archs"] = cached["archs"] if new["archs"] is None else new["archs"]
        cached["entries"].update(new["entries"])
        _write(path, cached)
    out = {}
    for name, entries in sorted(wanted.items()):
        record = sources.SOURCES[name]
        for key, (ident, spec) in sorted(entries.items()):
            found = caches[name][1]["entries"][ident]
            if "error" in found:  # an unknown architecture or factory: before any layer is looked at
                raise ConfigError(f"models.{key}{found['error']}", found["message"])
            out[key] = {**found, "source": name, "archs": caches[name][1]["archs"],
                        "searched": record.searched(spec["arch"], sources.library_version(record),
                                                    found.get("layers_by", ""))}
    return out


def node_table(catalog: dict | None, source_catalogs: dict, models: dict) -> dict | None:
    """``{catalog key: nodes}`` (rsaflow.sources.Source.catalog_key) for glob patterns in ``layers``."""
    table = dict(catalog["nodes"]) if catalog else {}
    for key, found in source_catalogs.items():
        if "nodes" in found:
            table[sources.SOURCES[found["source"]].catalog_key(models[key].get("arch", key))] = found["nodes"]
    return table if (catalog or source_catalogs) else None


def check_source_models(models: dict, source_catalogs: dict) -> None:
    """ConfigError for the first unknown layer of a non-torchvision entry (``models``: normalised
    specs), with close matches from its library's catalog."""
    for key, found in sorted(source_catalogs.items()):
        record, spec = sources.SOURCES[found["source"]], models[key]
        for label, layer in spec["layers"].items():
            select_node(layer["node"], found["nodes"], spec["arch"], f"models.{key}.layers.{label}",
                        found["searched"], record.layers_command(spec["arch"]))
