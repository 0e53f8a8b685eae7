"""The backends of the numeric kernels: NumPy (the default) or torch (config ``rdm.backend``,
``second_order.backend``; ``device``: auto, cpu, cuda, cuda:<index>). Torch-free: the torch
backend's module, rsaflow.torch_kernels, is imported only by :func:`select` when a job asked for it.

A :class:`Kernels` record is what a job gets: the Gram accumulator of the RDM job (None: BLAS dsyrk,
rsaflow.rdm), the ranking of condensed vectors (None: rsaflow.compare.ranks_and_ties; torch only on a
GPU: on the CPU the NumPy packed-key ranking is faster than ``torch.sort``, 1.3-4.5x in
benchmarks/bench_gpu_kernels.py, and bit for bit the same), the second order's product (None:
rsaflow.products.gram) and the attributes its products record.

Content keys. The NumPy backend adds nothing to a config slice or a product (keys and bits as
before the backends existed). The torch backend's RDM differs from the NumPy one in the last bits
of the Gram sums, so it is a product of its own: its slice carries ``backend`` and ``device`` and
its file the attribute ``kernels`` (backend, resolved device type, torch version), all in its
content key (not the GPU model, as for the extraction's device: another GPU may change the last
bits, within the same tolerance); its ranks are bit-identical (rsaflow.torch_kernels). The second
order's stored pairs and tiles leave the backend out of their reuse key, as they leave out
``compare.chunk_mb``: both change the sums by float rounding only (rsaflow.jobs.second_order).
"""

from __future__ import annotations

import contextlib
import importlib.util
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

from rsaflow.errors import ConfigError


@dataclass(frozen=True)
class Backend:
    """One backend: its name, whether it needs torch, and whether a device choice can put it on a GPU."""

    name: str
    needs_torch: bool
    uses_gpu: bool


BACKENDS = {b.name: b for b in (Backend("numpy", needs_torch=False, uses_gpu=False),
                                Backend("torch", needs_torch=True, uses_gpu=True))}
DEFAULT = "numpy"


@dataclass(frozen=True)
class Kernels:
    """The kernels a job uses (see the module docstring); ``attrs``: what its products record."""

    backend: str
    device: str = "cpu"
    gram_accumulator: Callable | None = None
    ranks_and_ties: Callable | None = None
    gram: Callable | None = None
    attrs: dict = field(default_factory=dict)


NUMPY = Kernels(DEFAULT)


def _backend(cfg: Mapping, section: str) -> Backend:
    name = cfg.get("backend", DEFAULT)
    if name not in BACKENDS:
        raise ConfigError(f"{section}.backend", f"{name!r} is not allowed; allowed: {', '.join(BACKENDS)}")
    return BACKENDS[name]


def spec_slice(cfg: Mapping, section: str) -> dict:
    """What a rule's config slice carries of ``cfg`` (the ``section`` config, e.g. config['rdm']):
    nothing for the NumPy backend (slices and keys as before), else ``backend`` and ``device``."""
    backend = _backend(cfg, section)
    if not backend.needs_torch:
        return {}
    return {"backend": backend.name, "device": cfg.get("device", "auto")}


def select(spec: Mapping, section: str) -> Kernels:
    """The kernels of a job whose slice is ``spec`` (:func:`spec_slice` merged in). The torch backend
    without torch installed, or with a CUDA device and no GPU visible to torch: one ConfigError
    naming ``<section>.backend`` or ``<section>.device``."""
    backend = _backend(spec, section)
    if not backend.needs_torch:
        return NUMPY
    if importlib.util.find_spec("torch") is None:
        raise ConfigError(f"{section}.backend", "torch is asked for but not installed in this job's environment "
                                                "(pip install torch, or use backend: numpy)")
    from rsaflow import torch_kernels as tk
    from rsaflow.compare import ranks_and_ties as numpy_ranks

    dev = tk.resolve_device(spec.get("device", "auto"), f"{section}.device")
    block = int(spec.get("block", 8192))
    return Kernels(
        backend.name,
        str(dev),
        gram_accumulator=lambda n: tk.GramAccumulator(n, dev, f"{section}.device", block),
        # On the CPU the NumPy packed-key ranking (rsaflow.ranking) is the faster one, bit for bit the same;
        # on a GPU too small for the vector, the same.
        ranks_and_ties=None if dev.type == "cpu" else (lambda values: tk.ranks_and_ties(values, dev, numpy_ranks)),
        gram=lambda a, b=None: tk.gram(a, b, dev),
        attrs={"kernels": tk.describe(dev)},
    )


def gpu_resource(cfg: Mapping, env: Mapping, section: str) -> int:
    """``resources: gpu=`` of a job of ``section`` (rdm, second_order): 0 for the NumPy backend or
    device cpu; 1 for device cuda; auto as ``extraction.gpu: auto`` (rsaflow.schema.gpu_resource):
    1 where the run declares a gpu resource of at least 1, or declares none and a GPU is visible."""
    if not _backend(cfg, section).uses_gpu:
        return 0
    device = str(cfg.get("device", "auto"))
    if device == "cpu":
        return 0
    if device.startswith("cuda"):
        return 1
    if env.get("declared") is not None:
        return int(env["declared"] >= 1)
    return int(env.get("visible", 0) > 0)


_ACTIVE: list[Kernels] = [NUMPY]


def active() -> Kernels:
    """The kernels set by :func:`using` (NUMPY outside it)."""
    return _ACTIVE[-1]


@contextlib.contextmanager
def using(kernels: Kernels) -> Iterator[Kernels]:
    """Make ``kernels`` the ones rsaflow.products.gram dispatches to, for the duration of a job's work."""
    _ACTIVE.append(kernels)
    try:
        yield kernels
    finally:
        _ACTIVE.pop()
