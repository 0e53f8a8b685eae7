"""Preprocessing adapters shared by the model sources.

- :func:`pil_batches`: a library's own per-image transform (timm, OpenCLIP, a factory's), which
  takes a PIL image, applied to each uint8 stimulus of a batch on the CPU;
- :func:`preprocess_transform`: ``preprocess: {size, mean, std, interpolation}`` of a
  ``python`` entry, as batched tensor operations on float images in [0, 1] on the device.
"""

from __future__ import annotations

from typing import Callable

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2

from rsaflow.sources import PREPROCESS_DEFAULTS



def pil_batches(transform: Callable) -> Callable:
    """uint8 (B, 3, H, W) tensor -> ``torch.stack([transform(PIL image) for each stimulus])``."""
    def apply(x: torch.Tensor) -> torch.Tensor:
        images = x.permute(0, 2, 3, 1).numpy()
        return torch.stack([transform(Image.fromarray(img)) for img in images])
    return apply


def preprocess_transform(options: dict) -> v2.Compose:
    """``preprocess:`` as tensor ops on float images in [0, 1]: resize to ``size`` ([height, width],
    antialiased; none: as given), then ``(x - mean) / std`` per channel."""
    opts = {**PREPROCESS_DEFAULTS, **(options or {})}
    steps = []
    if opts["size"] is not None:
        mode = InterpolationMode(opts["interpolation"])
        steps.append(v2.Resize(list(opts["size"]), interpolation=mode, antialias=True))
    steps.append(v2.Normalize(mean=list(opts["mean"]), std=list(opts["std"])))
    return v2.Compose(steps)
