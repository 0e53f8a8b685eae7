"""Checkpoints (``weights: <path>``): a state_dict read with ``weights_only=True`` (no code in the
file runs), fitted to a model built untrained; a classifier head of another size is adapted where
the source can rebuild the model with another number of outputs. Imports torch (extraction only).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import torch

from rsaflow.errors import InputFileError

log = logging.getLogger(__name__)


#: Entries of a training checkpoint dict that may hold the state_dict, tried in this order.
STATE_DICT_ENTRIES = ("state_dict", "model_state_dict", "model")

#: Key prefixes that wrappers add to every key (DataParallel / DistributedDataParallel: ``module.``).
WRAPPER_PREFIXES = ("module.",)


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _check_torch_file(path: Path) -> None:
    """InputFileError (one line, saying what the file is instead) unless it starts like a torch.save file."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):
        return
    if len(head) >= 9 and head[8:9] == b"{":
        what = "a safetensors file; convert it: torch.save(safetensors.torch.load_file(path), 'model.pt')"
    elif not head:
        what = "an empty file"
    else:
        text = head.decode("utf-8", errors="ignore")
        if len(text) >= len(head) - 3 and all(c.isprintable() or c.isspace() for c in text):
            what = f"a text file (starts with {text.split(chr(10))[0]!r})"
        else:
            what = f"a file starting with the bytes {head[:8].hex(' ')}"
    raise InputFileError(path, f"not a torch checkpoint (a file written by torch.save): {what}")


def read_state_dict(path: Path) -> tuple[dict, dict]:
    """The state_dict in a checkpoint file, and where it was found (provenance entries).

    Accepted: a state_dict (``torch.save(model.state_dict(), path)``), a dict holding it under one
    of :data:`STATE_DICT_ENTRIES` (a training checkpoint), with every key optionally prefixed by
    ``module.`` (a DataParallel model's state_dict). Loaded with ``weights_only=True``: no code in
    the file runs. Anything else raises InputFileError naming the file, in one line.
    """
    import pickle
    import re

    _check_torch_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        obj = f"a pickled {found.group(1)} object" if found else "pickled Python objects"
        raise InputFileError(
            path,
            f"holds {obj} (a whole model saved with torch.save(model)?), which rsaflow does not unpickle (that would "
            "run code from the file); save the weights only: torch.save(model.state_dict(), path)",
        ) from None
    except Exception as exc:  # truncated zip, unexpected EOF, damaged records
        raise InputFileError(
            path, f"cannot read this torch checkpoint, truncated or damaged? ({type(exc).__name__}: {_one_line(exc)}); "
                  "copy or save it again",
        ) from None
    where: dict = {}
    if isinstance(state, dict) and not all(isinstance(v, torch.Tensor) for v in state.values()):
        entry = next((k for k in STATE_DICT_ENTRIES if isinstance(state.get(k), dict)), None)
        if entry is None:
            keys = ", ".join(repr(k) for k in list(state)[:8])
            raise InputFileError(
                path, f"a dict with keys {keys} but no state_dict: expected a state_dict (a dict of tensors, "
                      f"torch.save(model.state_dict(), path)) or a dict holding one under {', '.join(STATE_DICT_ENTRIES)}",
            )
        state, where["checkpoint_entry"] = state[entry], entry
    if not isinstance(state, dict) or not state:
        found = "an empty dict" if isinstance(state, dict) else f"a {type(state).__name__}"
        raise InputFileError(path, f"expected a state_dict (a dict of tensors), found {found}; "
                                   "save it with torch.save(model.state_dict(), path)")
    bad = next((k for k, v in state.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise InputFileError(path, f"state_dict entry {bad!r} is a {type(state[bad]).__name__}, not a tensor")
    for prefix in WRAPPER_PREFIXES:
        if all(isinstance(k, str) and k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
            where["checkpoint_prefix"] = prefix
    return state, where


def _shape(t) -> str:
    return "x".join(str(d) for d in t.shape) or "scalar"


def _misfit(reference: dict, state: dict) -> tuple[list[str], list[str], list[str]]:
    """Keys of ``reference`` missing from ``state``, keys of ``state`` not in ``reference``, keys of different shape.

    ``num_batches_tracked`` buffers may be missing (older checkpoints): BatchNorm fills them in.
    """
    missing = [k for k in reference if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in reference]
    shapes = [k for k in reference if k in state and reference[k].shape != state[k].shape]
    return missing, unexpected, shapes


def model_for_state(arch: str, state: dict, path: Path, arch_key: str, make: Callable,
                    default_classes: int | None):
    """``arch`` built untrained with the classifier head that ``state`` has; (model, num_classes).

    make: ``make(num_classes)`` builds the model untrained (``num_classes=None``: its default
    head, with ``default_classes`` outputs); ``default_classes=None`` for a model that cannot
    be rebuilt with another head (then the checkpoint must fit exactly).

    The default build (ImageNet's 1000 classes) is tried first. When the only tensors that do not
    fit are those whose leading dimension is the number of classes in one build and one other
    number n in the checkpoint, ``arch`` is rebuilt with ``num_classes=n`` and must then fit exactly
    (so only the head, the modules that produce the logits, may differ, and only in the number of
    outputs). Anything else raises InputFileError naming the file and what does not fit.
    """
    model = make(None)
    reference = model.state_dict()
    missing, unexpected, shapes = _misfit(reference, state)
    if not missing and not unexpected and not shapes:
        return model, default_classes
    if not missing and not unexpected and default_classes is not None:
        sizes = {state[k].shape[0] for k in shapes if state[k].ndim == reference[k].ndim and state[k].ndim >= 1
                 and reference[k].shape[0] == default_classes}
        if len(sizes) == 1 and all(reference[k].shape[0] == default_classes for k in shapes):
            n = sizes.pop()
            rebuilt = make(n)
            if _misfit(rebuilt.state_dict(), state) == ([], [], []):
                log.info("%s: classifier head with %d outputs (%s); %s rebuilt with num_classes=%d",
                         path, n, ", ".join(shapes), arch, n)
                return rebuilt, n
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensors of {arch} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} tensors that {arch} does not have (e.g. {', '.join(unexpected[:3])})")
    if shapes:
        examples = ", ".join(f"{k}: {_shape(state[k])} in the file, {_shape(reference[k])} in {arch}" for k in shapes[:3])
        parts.append(f"{len(shapes)} tensors of another shape (e.g. {examples})")
    raise InputFileError(
        path,
        f"checkpoint does not fit {arch} ({'; '.join(parts)}); a checkpoint of another architecture? set "
        f"{arch_key} to the architecture it was trained as (only a classifier head of another size is adapted)",
    )


def load_checkpoint(weights: str, arch: str, key: str, make: Callable, default_classes: int | None):
    """The model ``make`` builds, with the state_dict of the checkpoint file ``weights``; (model, provenance)."""
    from rsaflow.errors import ConfigError
    from rsaflow.provenance import file_sha256

    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(f"{key}.weights", f"checkpoint {path} not found")
    state, where = read_state_dict(path)
    model, num_classes = model_for_state(arch, state, path, f"{key}.arch", make, default_classes)
    model.load_state_dict(state)
    prov = {"weights": "checkpoint", "checkpoint": str(path.resolve()), "weights_sha256": file_sha256(path)}
    if num_classes is not None:
        prov["num_classes"] = num_classes
    prov.update(where)
    return model, prov
