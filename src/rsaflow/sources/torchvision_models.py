"""Source ``torchvision``: its classification models, weights names and weights transforms.

Images are converted to float in [0, 1] before the weights' preprocessing transforms, as in the
tutorial (resizing happens in float, on the device, not on uint8).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision
from torchvision.models import get_model, get_model_weights, list_models

from rsaflow import modelspec
from rsaflow.checkpoints import load_checkpoint
from rsaflow.errors import ConfigError
from rsaflow.layers import Built
from rsaflow.modelspec import weights_kind
from rsaflow.provenance import file_sha256


def archs() -> list[str]:
    """Names of torchvision's image-classification architectures."""
    return sorted(list_models(module=torchvision.models))


def check_arch(arch: str, key: str) -> None:
    """Raise ConfigError (at ``key``) unless ``arch`` is a torchvision classification model."""
    modelspec.check_arch(arch, archs(), key)


def _weights_cache_file(weights) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def load_model(arch: str, weights: str, seed: int, key: str):
    """Build ``arch`` with ``weights`` in eval mode; return (model, transforms, weights provenance).

    weights: a torchvision weights name of the architecture (e.g. ``IMAGENET1K_V1``), ``DEFAULT``,
    ``none`` (untrained; initialisation seeded with ``seed``), or a path to a checkpoint
    (a state_dict, loaded with ``weights_only=True``). ``key`` is the config key for messages.
    """
    check_arch(arch, f"{key}.arch")
    enum = get_model_weights(arch)
    default = enum.DEFAULT
    modelspec.check_weights(weights, arch, list(enum.__members__), f"{key}.weights")
    kind = weights_kind(weights)
    if kind == "none":
        torch.manual_seed(seed)
        model = get_model(arch, weights=None)
        return model.eval(), default.transforms(), {"weights": "none", "init_seed": seed, "transforms_from": str(default)}
    if kind == "name":
        chosen = default if weights == "DEFAULT" else enum[weights]
        cached = _weights_cache_file(chosen)
        try:
            model = get_model(arch, weights=chosen)
        except (OSError, RuntimeError) as exc:  # URLError is an OSError; hash mismatch a RuntimeError
            raise ConfigError(
                f"{key}.weights",
                f"weights {chosen} could not be loaded: {cached} is not in the cache folder {cached.parent} and "
                f"downloading {chosen.url} failed ({type(exc).__name__}: {exc}). Copy the file there "
                f"(or set TORCH_HOME), or use weights: none for an untrained model",
            ) from None
        prov = {"weights": str(chosen), "weights_url": chosen.url, "weights_file": str(cached)}
        if cached.exists():
            prov["weights_sha256"] = file_sha256(cached)
        return model.eval(), chosen.transforms(), prov
    classes = len(default.meta["categories"])
    model, prov = load_checkpoint(weights, arch, key, lambda n: _untrained(arch, n), classes)
    return model.eval(), default.transforms(), {**prov, "transforms_from": str(default)}


def _untrained(arch: str, num_classes: int | None):
    return get_model(arch, weights=None) if num_classes is None else get_model(arch, weights=None, num_classes=num_classes)


def build(spec: dict, key: str) -> Built:
    """The model of a ``source: torchvision`` entry; its weights' transforms run on the device."""
    model, transforms, prov = load_model(spec["arch"], spec["weights"], spec.get("seed", 0), key)
    return Built(model, prov, device_transform=transforms)


def skeleton(spec: dict, key: str):
    """The architecture without parameter memory (meta device), for listing its graph nodes."""
    check_arch(spec["arch"], f"{key}.arch")
    with torch.device("meta"):
        return get_model(spec["arch"], weights=None).eval()
