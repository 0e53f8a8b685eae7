"""Model sources: where a model entry's network comes from (``source:`` in the config).

One registry of frozen records, :data:`SOURCES`; the DAG-time code (config, catalog) and the
extraction job look a model's record up and ask it, never compare source names. This module is
pure standard library (imported by the Snakefile); each record names its extraction module
(``impl``, e.g. :mod:`rsaflow.sources.timm_models`), which imports torch and the library and
provides ``build(spec, key) -> rsaflow.layers.Built`` and ``archs() -> list[str] | None``.

| source        | ``arch``                                        | ``weights``                                   | preprocessing                          |
|---------------|--------------------------------------------------|-----------------------------------------------|----------------------------------------|
| torchvision   | a classification architecture                    | a weights name, DEFAULT, none, a checkpoint   | the weights' transforms                |
| timm          | a timm model name (``timm.list_models()``)       | none, pretrained, a pretrained tag, a checkpoint | timm's eval transform of the model  |
| huggingface   | a model id or a ``save_pretrained`` directory    | pretrained (default), none                    | its saved image processor              |
| open_clip     | an OpenCLIP model name (image tower only)        | none, a pretrained tag, a checkpoint          | OpenCLIP's preprocess transform        |
| python        | ``file.py:function`` or ``package.module:function`` | none (default), a checkpoint               | the factory's transform, or ``preprocess:`` |
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from rsaflow.errors import ConfigError


@dataclass(frozen=True)
class Source:
    """One model source. ``package``: the distribution whose version is recorded in every
    activation file, keys the catalog and joins the content keys (None: the user's own code, whose
    file sha256 is recorded instead); ``module``: its import name; ``extra``: rsaflow's pip extra
    installing it; ``impl``: rsaflow's extraction module for it; ``default_weights``: the value when
    the entry gives none (None: ``weights`` is required); ``tracing``: whether layers may be torch.fx
    graph nodes (else module names with forward hooks); ``factory``: ``arch`` names user code;
    ``preprocess``: the entry may give ``preprocess:``; ``keyed_version``: the library's version
    is recorded as ``library_version`` (joins the content keys downstream; torchvision's is kept
    out, so that existing results keep their keys, and recorded under ``versions`` as before);
    ``remote_code``: the entry may set ``trust_remote_code``."""

    name: str
    package: str | None
    module: str | None
    extra: str | None
    impl: str
    default_weights: str | None
    weights_help: str
    arch_help: str
    tracing: bool = True
    factory: bool = False
    preprocess: bool = False
    keyed_version: bool = True
    remote_code: bool = False

    def layers_command(self, arch: str) -> str:
        """The ``rsaflow layers`` command that lists the layers of ``arch`` (the default source needs no flag)."""
        return f"rsaflow layers {arch}" if self.name == DEFAULT_SOURCE else f"rsaflow layers --source {self.name} {arch}"

    def catalog_key(self, arch: str) -> str:
        """The key of ``arch``'s node list in the catalog's table (the default source's: the arch itself)."""
        return arch if self.name == DEFAULT_SOURCE else f"{self.name}:{arch}"

    def searched(self, arch: str, version: str | None, layers_by: str) -> str:
        """What an unknown node's message says was searched, e.g. ``timm 1.0.31 convnext_atto (module names)``."""
        library = f"{self.package} {version} " if self.package and version and self.name != DEFAULT_SOURCE else ""
        return f"{library}{arch}" + (" (module names)" if layers_by == "modules" else "")


SOURCES = {s.name: s for s in (
    Source("torchvision", "torchvision", "torchvision", "torch", "rsaflow.sources.torchvision_models", None,
           "a torchvision weights name (e.g. IMAGENET1K_V1), DEFAULT, none, or a checkpoint path",
           "a torchvision classification architecture", keyed_version=False),
    Source("timm", "timm", "timm", "timm", "rsaflow.sources.timm_models", None,
           "none, pretrained, a pretrained tag of the model (e.g. fb_in1k), or a checkpoint path",
           "a timm model name"),
    Source("huggingface", "transformers", "transformers", "hf", "rsaflow.sources.hf_models", "pretrained",
           "pretrained (the weights in arch) or none (its config, seeded initialisation)",
           "a Hugging Face model id or a directory written by save_pretrained", tracing=False, remote_code=True),
    Source("open_clip", "open_clip_torch", "open_clip", "clip", "rsaflow.sources.clip_models", None,
           "none, a pretrained tag of the model (e.g. openai), or a checkpoint path",
           "an OpenCLIP model name"),
    Source("python", None, None, None, "rsaflow.sources.python_models", "none",
           "none (the factory's initialisation, seeded) or a checkpoint path (a state_dict)",
           "file.py:function or package.module:function", factory=True, preprocess=True, keyed_version=False),
)}

DEFAULT_SOURCE = "torchvision"

#: Defaults of a ``python`` entry's ``preprocess:`` when its factory returns no transform: no
#: resizing, ImageNet's channel statistics (the convention of most vision models), bilinear.
PREPROCESS_DEFAULTS = {"size": None, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                       "interpolation": "bilinear"}

#: Keys of a model entry that only some sources take, with the record field that allows them.
SOURCE_KEYS = {"preprocess": "preprocess", "trust_remote_code": "remote_code"}


def get(name: str, key: str = "source") -> Source:
    """The record of ``name``; ConfigError at ``key`` listing the sources otherwise."""
    if name not in SOURCES:
        close = difflib.get_close_matches(name, SOURCES, n=3, cutoff=0.5)
        raise ConfigError(key, f"unknown model source {name!r}; choose one of {', '.join(SOURCES)}"
                               + (f" (close: {', '.join(close)})" if close else ""))
    return SOURCES[name]


def library_version(source: Source) -> str | None:
    """The installed version of the source's library (None: not installed here, or user code)."""
    if source.package is None:
        return None
    try:
        return importlib.metadata.version(source.package)
    except importlib.metadata.PackageNotFoundError:
        return None


def installed(source: Source) -> bool:
    """Whether the source's library can be imported by this Python (user code: always)."""
    return source.module is None or importlib.util.find_spec(source.module) is not None


def missing_library(source: Source, key: str) -> ConfigError:
    """The one-line error for a model whose library is not installed, naming the extra."""
    return ConfigError(key, f"source {source.name} needs the Python package {source.package}, which is not "
                            f"installed for this Python; install it with: pip install 'rsaflow[{source.extra}]' "
                            f"(or pip install {source.package})")


def library(name: str, key: str = "models"):
    """Source ``name``'s library (its Source.module), imported; where it is not installed, the
    error of :func:`missing_library` at ``<key>.source``."""
    source = SOURCES[name]
    try:
        return importlib.import_module(source.module)
    except ImportError:
        raise missing_library(source, f"{key}.source") from None


def unknown_arch(name: str, label: str, module, arch: str, names, key: str) -> ConfigError:
    """The error at ``key`` for an ``arch`` that source ``name``'s library (``module``, called
    ``label``) does not know, with its close matches among ``names``."""
    close = difflib.get_close_matches(arch, list(names), n=5, cutoff=0.5)
    return ConfigError(key, f"unknown {label} {module.__version__} model {arch!r}; close matches: "
                            f"{', '.join(close) or 'none'} (list them with: rsaflow layers --source {name} --list)")


def weights_provenance(weights: str, seed: int) -> dict:
    """What an activation file records of weights that are not a checkpoint: the name, or ``none``
    and the seed of the initialisation."""
    return {"weights": weights} if weights != "none" else {"weights": "none", "init_seed": seed}


def split_factory(arch: str, key: str) -> tuple[str, str]:
    """``"models/net.py:build"`` -> (``"models/net.py"``, ``"build"``); ConfigError without a ``:function``."""
    where, sep, func = arch.rpartition(":")
    if not sep or not where or not func.isidentifier():
        raise ConfigError(key, f"{arch!r} is not file.py:function or package.module:function (the function "
                               "that returns the nn.Module, or (module, transform))")
    return where, func


def factory_file(arch: str, key: str) -> Path | None:
    """The source file a factory lives in: ``file.py`` (relative to the working directory), or
    ``package/module.py`` found on the import path without importing it (None if not found there)."""
    where, _ = split_factory(arch, key)
    if where.endswith(".py"):
        path = Path(where).expanduser()
        if not path.is_file():
            raise ConfigError(key, f"factory file {path} not found (relative to the working directory {Path.cwd()})")
        return path
    try:
        spec = importlib.util.find_spec(where) if "." not in where else None
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin and spec.origin.endswith(".py"):
        return Path(spec.origin)
    import sys

    for root in ["", *sys.path]:
        base = Path(root or ".").joinpath(*where.split("."))
        for path in (base.with_suffix(".py"), base / "__init__.py"):
            if path.is_file():
                return path
    return None


def file_digest(path: Path) -> str:
    """sha256 of a (small) source file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
