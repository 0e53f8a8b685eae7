"""Source ``huggingface``: a ``transformers`` vision model from a model id or a local directory
written by ``save_pretrained`` (the offline path), its saved image processor, run as
``model(pixel_values=...)``. Of a multimodal model (CLIP, SigLIP: a config with a
``vision_config``) the vision tower is used. Layers are module names (forward hooks): torch.fx
cannot trace most of these models. The model's own code from the Hub runs only where the entry
sets ``trust_remote_code: true``; safetensors files are preferred where both are present.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rsaflow.errors import ConfigError
from rsaflow.layers import Built
from rsaflow.sources import library


def _transformers(key: str = "models"):
    return library("huggingface", key)


def archs() -> None:
    """No list: any model id or save_pretrained directory."""
    return None


def _options(spec: dict) -> dict:
    local = Path(spec["arch"]).expanduser().is_dir()
    return {"trust_remote_code": bool(spec.get("trust_remote_code", False)), "local_files_only": local}


def _config(spec: dict, key: str):
    tf = _transformers(key)
    try:
        return tf.AutoConfig.from_pretrained(spec["arch"], **_options(spec))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{key}.arch", f"no Hugging Face model {spec['arch']!r} ({type(exc).__name__}: "
                                         f"{str(exc).splitlines()[0][:200]}); give a directory written by "
                                         "save_pretrained, or a model id where the Hub or its cache is reachable") from None


def _model(spec: dict, key: str, config):
    tf = _transformers(key)
    if spec["weights"] == "none":
        return tf.AutoModel.from_config(config, trust_remote_code=bool(spec.get("trust_remote_code", False)))
    if spec["weights"] != "pretrained":
        raise ConfigError(f"{key}.weights", f"{spec['weights']!r}: a huggingface model takes weights pretrained "
                                            "(the weights saved with arch) or none (seeded initialisation)")
    return tf.AutoModel.from_pretrained(spec["arch"], config=config, use_safetensors=None, **_options(spec))


def _tower(model, config):
    """A multimodal model's vision tower (a config with a vision_config), else the model."""
    tower = getattr(model, "vision_model", None) if getattr(config, "vision_config", None) is not None else None
    return tower if tower is not None else model


def build(spec: dict, key: str) -> Built:
    """The entry's model (its vision tower, for a multimodal config) and image processor."""
    tf = _transformers(key)
    config = _config(spec, key)
    seed = spec.get("seed", 0)
    torch.manual_seed(seed)  # weights none; and any weights missing from a checkpoint (a pooler, say)
    model = _model(spec, key, config)
    tower = _tower(model, config)
    processor = tf.AutoImageProcessor.from_pretrained(spec["arch"], **_options(spec))
    prov = {"weights": spec["weights"], "hf_model_class": type(model).__name__,
            "transforms_from": f"{type(processor).__name__} saved with {spec['arch']}"}
    if spec["weights"] == "none":
        prov["init_seed"] = seed

    def cpu_transform(x: torch.Tensor) -> torch.Tensor:
        images = list(x.permute(0, 2, 3, 1).numpy())
        return processor(images=images, return_tensors="pt")["pixel_values"]

    registers = getattr(config, "num_register_tokens", 0) or 0
    return Built(tower.eval(), prov, cpu_transform=cpu_transform,
                 call=lambda m, x: m(pixel_values=x), prefix_tokens=1 + registers)


def skeleton(spec: dict, key: str):
    """The model (its vision tower) from its config, without parameter memory, for listing its layers."""
    config = _config(spec, key)
    with torch.device("meta"):
        model = _transformers(key).AutoModel.from_config(
            config, trust_remote_code=bool(spec.get("trust_remote_code", False)))
    return _tower(model, config).eval()
