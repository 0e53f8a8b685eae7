"""Source ``timm``: ``timm.create_model(arch)`` and the model's own eval transform
(``timm.data.resolve_model_data_config`` + ``create_transform(..., is_training=False)``), applied to
each stimulus as a PIL image, as timm's own evaluation does."""

from __future__ import annotations

import torch

from rsaflow.checkpoints import load_checkpoint
from rsaflow.errors import ConfigError
from rsaflow.layers import Built
from rsaflow.modelspec import weights_kind
from rsaflow.sources import library, unknown_arch, weights_provenance
from rsaflow.sources.transforms import pil_batches


def archs() -> list[str]:
    return sorted(library("timm").list_models())


def check_arch(arch: str, key: str) -> None:
    """ConfigError at ``key`` with close matches unless timm knows ``arch``."""
    timm = library("timm", key)
    if not timm.is_model(arch):
        raise unknown_arch("timm", "timm", timm, arch, timm.list_models(), key)


def _create(arch: str, weights: str, key: str, **kwargs):
    timm = library("timm", key)
    name = arch if weights in ("none", "pretrained") or weights_kind(weights) != "name" else f"{arch}.{weights}"
    try:
        return timm.create_model(name, pretrained=weights_kind(weights) == "name", **kwargs)
    except (OSError, RuntimeError) as exc:  # no network, no cached file, unknown tag
        raise ConfigError(f"{key}.weights", f"timm weights {name!r} could not be loaded ({type(exc).__name__}: "
                                            f"{str(exc).splitlines()[0][:200]}); where there is no network, put "
                                            "them in the Hugging Face cache (HF_HOME) or give a checkpoint path, "
                                            "or use weights: none") from None


def build(spec: dict, key: str) -> Built:
    """The timm model of the entry: ``weights`` none (seeded), pretrained, a tag, or a checkpoint."""
    arch, weights, seed = spec["arch"], spec["weights"], spec.get("seed", 0)
    check_arch(arch, f"{key}.arch")
    torch.manual_seed(seed)
    if weights_kind(weights) == "checkpoint":
        base = _create(arch, "none", key)
        model, prov = load_checkpoint(
            weights, arch, key, lambda n: base if n is None else _create(arch, "none", key, num_classes=n),
            getattr(base, "num_classes", None) or None)
    else:
        model = _create(arch, weights, key)
        prov = weights_provenance(weights, seed)
    model.eval()
    timm = library("timm", key)
    data_config = timm.data.resolve_model_data_config(model)
    transform = timm.data.create_transform(**data_config, is_training=False)
    prov["transforms_from"] = f"timm.data.create_transform({data_config}, is_training=False)"
    return Built(model, prov, cpu_transform=pil_batches(transform),
                 prefix_tokens=getattr(model, "num_prefix_tokens", None))


def skeleton(spec: dict, key: str):
    """The model's modules without parameter memory (meta device), for listing its layers."""
    check_arch(spec["arch"], f"{key}.arch")
    with torch.device("meta"):
        return library("timm", key).create_model(spec["arch"], pretrained=False).eval()
