"""Source ``python``: a researcher's own ``nn.Module`` from a factory function.

``arch: models/mynet.py:build`` (a file, relative to the working directory) or
``arch: mypackage.nets:build`` (an importable module). The factory is called with no arguments
(right after ``torch.manual_seed(seed)``) and returns an ``nn.Module``, or ``(module, transform)``
where ``transform`` takes one PIL image and returns a (3, H, W) float tensor (a torchvision
``Compose``). Without a transform, ``preprocess:`` applies (rsaflow.sources.transforms). Loading a
factory runs its code: that is the user's explicit choice of this source. The factory file's
sha256 is recorded (``factory_sha256``) and joins the config slice, so editing it reruns exactly
this model; a file it imports itself is not tracked.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import torch

from rsaflow.checkpoints import load_checkpoint
from rsaflow.errors import ConfigError
from rsaflow.layers import Built
from rsaflow.modelspec import weights_kind
from rsaflow.sources import factory_file, file_digest, split_factory
from rsaflow.sources.transforms import pil_batches, preprocess_transform


def archs() -> None:
    """No list: any factory."""
    return None


def _load_module(where: str, key: str):
    if where.endswith(".py"):
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(key, f"factory file {path} not found")
        name = f"rsaflow_factory_{file_digest(path)[:12]}"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str(path.parent))  # the file may import its neighbours
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(path.parent))
        return module
    try:
        return importlib.import_module(where)
    except ImportError as exc:
        raise ConfigError(key, f"cannot import {where!r} ({exc}); install the package, or give file.py:function") from None


def factory(arch: str, key: str):
    """The factory function ``arch`` names; ConfigError with the module's close matches if it has no such name."""
    where, func = split_factory(arch, key)
    module = _load_module(where, key)
    fn = getattr(module, func, None)
    if not callable(fn):
        import difflib

        names = [n for n in vars(module) if callable(getattr(module, n)) and not n.startswith("_")]
        close = difflib.get_close_matches(func, names, n=5, cutoff=0.5)
        raise ConfigError(key, f"{where} has no function {func!r}; close matches: {', '.join(close) or 'none'}")
    return fn


def _call(arch: str, key: str, seed: int):
    torch.manual_seed(seed)
    made = factory(arch, f"{key}.arch")()
    model, transform = made if isinstance(made, tuple) else (made, None)
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"{key}.arch", f"{arch} returned a {type(model).__name__}, not an nn.Module "
                                         "(or a tuple (module, transform))")
    return model, transform


def build(spec: dict, key: str) -> Built:
    """The factory's module, with a checkpoint's state_dict where ``weights`` is a path."""
    arch, weights, seed = spec["arch"], spec["weights"], spec.get("seed", 0)
    model, transform = _call(arch, key, seed)
    if weights_kind(weights) == "checkpoint":
        model, prov = load_checkpoint(weights, arch, key, lambda n: model, None)
    elif weights == "none":
        prov = {"weights": "none", "init_seed": seed}
    else:
        raise ConfigError(f"{key}.weights", f"{weights!r}: a python model takes weights none (the factory's "
                                            "initialisation, seeded) or a checkpoint path (a state_dict)")
    path = factory_file(arch, f"{key}.arch")
    if path is not None:
        digest = file_digest(path)
        if spec.get("factory_sha256", digest) != digest:
            raise ConfigError(f"{key}.arch", f"{path} changed after the workflow was planned (sha256 "
                                             f"{digest[:12]}, planned {spec['factory_sha256'][:12]}); run again")
        prov.update(factory_file=str(path.resolve()), factory_sha256=digest)
    if transform is not None:
        prov["transforms_from"] = f"the transform {arch} returned"
        return Built(model.eval(), prov, cpu_transform=pil_batches(transform),
                     prefix_tokens=getattr(model, "num_prefix_tokens", None))
    prov["transforms_from"] = "preprocess"
    return Built(model.eval(), prov, device_transform=preprocess_transform(spec.get("preprocess")),
                 prefix_tokens=getattr(model, "num_prefix_tokens", None))


def skeleton(spec: dict, key: str):
    """The factory's module (its code runs, on the CPU), for listing its layers."""
    return _call(spec["arch"], key, spec.get("seed", 0))[0].eval()
