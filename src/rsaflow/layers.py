"""Layers of any model: torch.fx graph nodes where the model traces, module names with forward
hooks where it does not; and the reductions of a layer's output to one vector per stimulus.

Two ways to name a layer (``layers_by``, recorded in every activation file):

- ``fx``: a graph node of torchvision's ``get_graph_node_names`` in eval mode, or a module name,
  which selects the last graph node inside that module (``create_feature_extractor``);
- ``modules``: a name of ``model.named_modules()``; a forward hook takes the module's output. An
  output that is a tuple, a list or a model-output object (Hugging Face's ``ModelOutput``) gives
  its first tensor (logged, and recorded as ``output_taken``). A module called several times in
  one forward pass (a recurrent model) gives its last call's output.

Both run the model once per batch. Reductions (``reduce``), by the output's layout:

| reduce         | (N, D)  | (N, T, D) tokens                        | (N, C, H, W) (``layout: NCHW``, default) | (N, H, W, C) (``layout: NHWC``) |
|----------------|---------|-----------------------------------------|------------------------------------------|---------------------------------|
| ``flatten``    | as is   | all T x D values                        | all C x H x W values (C order)           | all values (C order)            |
| ``cls``        | refused | token 0 (the class token)               | refused                                  | refused                         |
| ``mean``       | refused | average over the T tokens -> (N, D)     | average over H, W -> (N, C)              | average over H, W -> (N, C)     |
| ``mean_patches`` | refused | average over the patch tokens (without the class and register tokens) -> (N, D) | refused | refused       |
| ``last``       | refused | token T-1 (the last token)              | refused                                  | refused                         |

A reduction that does not fit the output's shape is refused with one line (ConfigError at the
layer's ``reduce``). torch is imported here: only the extraction job and ``rsaflow layers`` do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import torch
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

log = logging.getLogger(__name__)

REDUCTIONS = ("flatten", "cls", "mean", "mean_patches", "last")
LAYOUTS = ("NCHW", "NHWC")


@dataclass
class Built:
    """A model ready to extract from, as a source's ``build`` returns it.

    model: the module whose layers are selected (eval mode; a multimodal model's image tower);
    device_transform: batched tensor ops on float images in [0, 1] on the device (torchvision's
    weights transforms, ``preprocess:``), or None; cpu_transform: uint8 (B, 3, H, W) CPU tensor ->
    float batch (a library's own PIL or image-processor transform), used when device_transform is
    None; call: how the model is run on a batch; prefix_tokens: class + register tokens of a token
    output (None: unknown, ``mean_patches`` refused); prov: provenance attributes.
    """

    model: torch.nn.Module
    prov: dict
    device_transform: Callable | None = None
    cpu_transform: Callable | None = None
    call: Callable = field(default=lambda model, x: model(x))
    prefix_tokens: int | None = None


def fx_nodes(model) -> list[str] | None:
    """The model's graph node names in eval mode (execution order); None where it does not trace."""
    try:
        return get_graph_node_names(model)[1]
    except Exception as exc:  # torch.fx raises anything from TraceError to TypeError on data-dependent code
        log.info("torch.fx cannot trace %s (%s: %s): layers are module names, taken by forward hooks",
                 type(model).__name__, type(exc).__name__, str(exc).split("\n")[0][:120])
        return None


def module_nodes(model) -> list[str]:
    """``named_modules()`` names (the root's empty name left out), in registration order."""
    return [name for name, _ in model.named_modules() if name]


def layer_names(model, tracing: bool, layers_by: str = "auto") -> tuple[str, list[str]]:
    """(``"fx"`` or ``"modules"``, the selectable names) of ``model``.

    ``layers_by``: ``auto`` (fx where the source allows tracing and the model traces), ``fx`` or
    ``modules``.
    """
    if layers_by != "modules" and (tracing or layers_by == "fx"):
        nodes = fx_nodes(model)
        if nodes is not None:
            return "fx", nodes
        if layers_by == "fx":
            raise ValueError(f"layers_by: fx, but {type(model).__name__} does not trace with torch.fx")
    return "modules", module_nodes(model)


def first_tensor(out) -> tuple[torch.Tensor, str]:
    """The tensor a hooked module's output stands for, and how it was taken (provenance)."""
    if isinstance(out, torch.Tensor):
        return out, "tensor"
    if hasattr(out, "to_tuple"):  # transformers' ModelOutput
        out, what = out.to_tuple(), f"first tensor of a {type(out).__name__}"
    else:
        what = f"first tensor of a {type(out).__name__}"
    if isinstance(out, (tuple, list)):
        for item in out:
            if isinstance(item, torch.Tensor):
                return item, what
    raise ValueError(f"the module's output is a {type(out).__name__} holding no tensor")


class _Stop(Exception):
    """Raised by the last hook once every hooked module has given its output (skips the rest)."""


class HookExtractor:
    """Runs ``call(model, x)`` once and returns ``{module name: output tensor}`` of ``names``.

    After a first batch in which every hooked module ran exactly once, later batches stop the
    forward pass as soon as all outputs are in (as fx pruning does); a module that ran more than
    once (recurrent) keeps its last output and the pass runs to its end.
    """

    def __init__(self, model, names: list[str], call: Callable):
        modules = dict(model.named_modules())
        self.model, self.call, self.names = model, call, list(names)
        self.taken: dict[str, str] = {}
        self._out: dict = {}
        self._calls: dict[str, int] = {}
        self._early = False
        for name in self.names:
            modules[name].register_forward_hook(self._hook(name))

    def _hook(self, name):
        def hook(module, args, output):
            tensor, how = first_tensor(output)
            self._out[name] = tensor
            self._calls[name] = self._calls.get(name, 0) + 1
            if name not in self.taken:
                self.taken[name] = how
                if how != "tensor":
                    log.info("module %s returns a %s: its %s is taken", name, type(output).__name__, how)
            if self._early and len(self._out) == len(self.names):
                raise _Stop
        return hook

    def __call__(self, x) -> dict:
        self._out, self._calls = {}, {}
        try:
            self.call(self.model, x)
        except _Stop:
            pass
        missing = [n for n in self.names if n not in self._out]
        if missing:
            raise RuntimeError(f"modules {', '.join(missing)} did not run in the forward pass (unused modules?)")
        if not self._early and all(c == 1 for c in self._calls.values()):
            self._early = True
        return self._out

    def eval(self):
        self.model.eval()
        return self

    def to(self, *args, **kwargs):
        self.model.to(*args, **kwargs)
        return self


def make_extractor(built: Built, layers_by: str, names: list[str]):
    """A callable batch -> ``{name: output}`` running the model once: fx (pruned after the last
    node) or forward hooks."""
    if layers_by == "fx":
        extractor = create_feature_extractor(built.model, return_nodes={n: n for n in names})
        call = built.call
        return _FxCall(extractor, call)
    return HookExtractor(built.model, names, built.call)


class _FxCall:
    """An fx feature extractor run the way the source runs its model (e.g. ``pixel_values=``)."""

    def __init__(self, extractor, call):
        self.extractor, self.call, self.taken = extractor, call, {}

    def __call__(self, x):
        return self.call(self.extractor, x)

    def eval(self):
        self.extractor.eval()
        return self

    def to(self, *args, **kwargs):
        self.extractor.to(*args, **kwargs)
        return self


def reduce_output(out: torch.Tensor, how: str, layout: str = "NCHW", prefix_tokens: int | None = None) -> torch.Tensor:
    """One vector per stimulus from a layer's batch output (see the module docstring's table)."""
    shape = tuple(out.shape)
    if how == "flatten":
        return out.reshape(out.shape[0], -1)
    if how == "mean" and out.ndim == 4:
        return out.mean(dim=(2, 3) if layout == "NCHW" else (1, 2))
    if out.ndim != 3:
        wants = "a (N, C, H, W), (N, H, W, C) or (N, tokens, D)" if how == "mean" else "a (N, tokens, D)"
        raise ValueError(f"reduce {how!r} needs {wants} output, got shape {shape}; use flatten "
                         + ("(the output is one vector per stimulus already)" if out.ndim == 2 else "or mean"))
    if how == "cls":
        return out[:, 0, :]
    if how == "mean":
        return out.mean(dim=1)
    if how == "last":
        return out[:, -1, :]
    if how == "mean_patches":
        if prefix_tokens is None:
            raise ValueError("reduce 'mean_patches' needs the number of class and register tokens, which this model "
                             "does not say (set num_prefix_tokens on the module); use mean or cls")
        if prefix_tokens >= out.shape[1]:
            raise ValueError(f"reduce 'mean_patches': {prefix_tokens} prefix tokens but only {out.shape[1]} tokens")
        return out[:, prefix_tokens:, :].mean(dim=1)
    raise ValueError(f"unknown reduction {how!r}; choose one of {', '.join(REDUCTIONS)}")
