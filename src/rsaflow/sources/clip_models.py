"""Source ``open_clip``: an OpenCLIP model's image tower (``model.visual``) and its preprocess
transform (``create_model_and_transforms``' eval transform, per PIL image). Layers are named
inside the tower (``transformer.resblocks.10``); a token output is (N, T, D) (batch first) with
one class token in front."""

from __future__ import annotations

import torch

from rsaflow.checkpoints import load_checkpoint
from rsaflow.errors import ConfigError
from rsaflow.layers import Built
from rsaflow.modelspec import weights_kind
from rsaflow.sources import library, unknown_arch, weights_provenance
from rsaflow.sources.transforms import pil_batches


def archs() -> list[str]:
    return sorted(library("open_clip").list_models())


def check_arch(arch: str, key: str) -> None:
    oc = library("open_clip", key)
    if arch not in oc.list_models():
        raise unknown_arch("open_clip", "OpenCLIP", oc, arch, oc.list_models(), key)


def _create(arch: str, pretrained: str | None, key: str):
    oc = library("open_clip", key)
    try:
        model, _, preprocess = oc.create_model_and_transforms(arch, pretrained=pretrained, weights_only=True)
    except (OSError, RuntimeError) as exc:
        tags = ", ".join(oc.list_pretrained_tags_by_model(arch)) or "none"
        raise ConfigError(f"{key}.weights", f"OpenCLIP weights {pretrained!r} of {arch} could not be loaded "
                                            f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); its tags: "
                                            f"{tags}; or give a checkpoint path, or weights: none") from None
    return model, preprocess


def build(spec: dict, key: str) -> Built:
    """The image tower of the entry's CLIP model: ``weights`` none (seeded), a tag or a checkpoint
    (the whole CLIP model's state_dict)."""
    arch, weights, seed = spec["arch"], spec["weights"], spec.get("seed", 0)
    check_arch(arch, f"{key}.arch")
    torch.manual_seed(seed)
    kind = weights_kind(weights)
    model, preprocess = _create(arch, weights if kind == "name" else None, key)
    if kind == "checkpoint":
        whole, prov = load_checkpoint(weights, arch, key, lambda n: model, None)
        tower = whole.visual
    else:
        tower = model.visual
        prov = weights_provenance(weights, seed)
    prov["transforms_from"] = "open_clip.create_model_and_transforms (eval preprocess)"
    prefix = 1 if getattr(tower, "class_embedding", None) is not None else 0
    return Built(tower.eval(), prov, cpu_transform=pil_batches(preprocess), prefix_tokens=prefix)


def skeleton(spec: dict, key: str):
    """The image tower without parameter memory (meta device), for listing its layers."""
    check_arch(spec["arch"], f"{key}.arch")
    with torch.device("meta"):
        return library("open_clip", key).create_model(spec["arch"], pretrained=None, device="meta").visual.eval()
