"""Activation extraction with torchvision models: the only module of rsaflow that imports torch.

A layer is a graph node of the model (as listed by ``rsaflow layers <arch>``, i.e. torchvision's
``get_graph_node_names`` in eval mode) plus a reduction of its output to one vector per stimulus:

- ``flatten``: all output values, reshaped to (N, M) in C order (the tutorial's squeeze for
  ResNet-50's (N, 2048, 1, 1) avgpool);
- ``cls``: token 0 of a (N, tokens, D) output, the class token of a vision transformer (the
  tutorial's ViT-B/16 reduction);
- ``mean``: the average over spatial positions (N, C, H, W) -> (N, C) or tokens
  (N, T, D) -> (N, D).

Images are converted to float in [0, 1] before the weights' preprocessing transforms, as in the
tutorial (resizing happens in float, not on uint8).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from torchvision.models import get_model, get_model_weights, list_models
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from rsaflow import h5io, modelspec
from rsaflow.errors import ConfigError, InputFileError, RsaflowError
from rsaflow.finite import check_finite
from rsaflow.modelspec import layer_slice, weights_kind
from rsaflow.provenance import file_sha256, versions

log = logging.getLogger(__name__)

REDUCTIONS = ("flatten", "cls", "mean")


def classification_models() -> list[str]:
    """Names of torchvision's image-classification architectures."""
    return sorted(list_models(module=torchvision.models))


def check_arch(arch: str, key: str) -> None:
    """Raise ConfigError (at ``key``) unless ``arch`` is a torchvision classification model."""
    modelspec.check_arch(arch, classification_models(), key)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda if available, else mps, else cpu; anything else as given, checked to exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("extraction.device", f"device {name!r} requested but CUDA is not available on {os.uname().nodename}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("extraction.device", f"device {name!r} requested but MPS is not available")
    return device


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


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
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(f"{key}.weights", f"checkpoint {path} not found")
    state, where = _read_state_dict(path)
    model, num_classes = _model_for_state(arch, state, path, f"{key}.arch")
    model.load_state_dict(state)
    prov = {"weights": "checkpoint", "checkpoint": str(path.resolve()), "weights_sha256": file_sha256(path),
            "num_classes": num_classes, "transforms_from": str(default)}
    prov.update(where)
    return model.eval(), default.transforms(), prov


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


def _read_state_dict(path: Path) -> tuple[dict, dict]:
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


def _model_for_state(arch: str, state: dict, path: Path, arch_key: str):
    """``arch`` built untrained with the classifier head that ``state`` has; (model, num_classes).

    The default build (ImageNet's 1000 classes) is tried first. When the only tensors that do not
    fit are those whose leading dimension is the number of classes in one build and one other
    number n in the checkpoint, ``arch`` is rebuilt with ``num_classes=n`` and must then fit exactly
    (so only the head, the modules that produce the logits, may differ, and only in the number of
    outputs). Anything else raises InputFileError naming the file and what does not fit.
    """
    model = get_model(arch, weights=None)
    reference = model.state_dict()
    missing, unexpected, shapes = _misfit(reference, state)
    default_classes = len(get_model_weights(arch).DEFAULT.meta["categories"])
    if not missing and not unexpected and not shapes:
        return model, default_classes
    if not missing and not unexpected:
        sizes = {state[k].shape[0] for k in shapes if state[k].ndim == reference[k].ndim and state[k].ndim >= 1
                 and reference[k].shape[0] == default_classes}
        if len(sizes) == 1 and all(reference[k].shape[0] == default_classes for k in shapes):
            n = sizes.pop()
            rebuilt = get_model(arch, weights=None, num_classes=n)
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


def graph_nodes(model) -> list[str]:
    """The model's graph node names in eval mode, in execution order."""
    return get_graph_node_names(model)[1]


def reduce_output(out: torch.Tensor, how: str) -> torch.Tensor:
    """One vector per stimulus from a node's batch output (see the module docstring)."""
    if how == "flatten":
        return out.reshape(out.shape[0], -1)
    if how == "cls":
        if out.ndim != 3:
            raise ValueError(f"reduce 'cls' needs a (N, tokens, D) output, got shape {tuple(out.shape)}")
        return out[:, 0, :]
    if how == "mean":
        if out.ndim == 4:
            return out.mean(dim=(2, 3))
        if out.ndim == 3:
            return out.mean(dim=1)
        raise ValueError(f"reduce 'mean' needs a (N, C, H, W) or (N, T, D) output, got shape {tuple(out.shape)}")
    raise ValueError(f"unknown reduction {how!r}; choose one of {', '.join(REDUCTIONS)}")


def _prepare_cuda() -> None:
    """Deterministic CUDA kernels (a rerun on the same device writes the same bytes, which the
    content-addressed reuse relies on) and no TF32: ``precision: float32`` means float32."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before cuBLAS starts
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def _batches(images, batch: int, pin: bool):
    """uint8 batches of ``images`` (an HDF5 dataset) as CPU tensors, the next one read by a
    background thread while the current one runs; pinned when ``pin`` (for non-blocking copies)."""
    from concurrent.futures import ThreadPoolExecutor

    def read(lo):
        x = torch.from_numpy(images[lo : lo + batch])
        return x.pin_memory() if pin else x

    starts = list(range(0, images.shape[0], batch))
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(read, starts[0]) if starts else None
        for i, lo in enumerate(starts):
            x = pending.result()
            pending = pool.submit(read, starts[i + 1]) if i + 1 < len(starts) else None
            yield lo, x


class _LayerWriter:
    """Streams one layer's (N, M) float32 activations to an HDF5 file, hashing the bytes as written.

    Chunks hold whole batches of rows, so each write fills its chunks and the chunk cache need
    not hold partial chunks: memory per layer is one batch of its values, whatever N is.
    """

    def __init__(self, f, n: int, batch: int):
        self.f, self.n, self.rows = f, n, min(n, batch)
        self.dset = None
        self.sha = hashlib.sha256()

    def write(self, lo: int, values: np.ndarray) -> None:
        if self.dset is None:
            m = values.shape[1]
            self.dset = self.f.create_dataset("activations", shape=(self.n, m), dtype="float32",
                                              chunks=(self.rows, min(m, 8192)), track_times=False)
        values = np.ascontiguousarray(values, dtype=np.float32)
        self.dset[lo : lo + len(values)] = values
        self.sha.update(values.data)

    def digest(self) -> str:
        """sha256 of the activations as float32, row-major (C order), shape recorded beside it."""
        return self.sha.hexdigest()


def _forward(extractor, x, device, transforms, memory_format, autocast: bool) -> dict:
    """One batch: uint8 (B, 3, H, W) to the device, to float in [0, 1], the weights' transforms there."""
    x = x.to(device, non_blocking=True).to(torch.float32).div_(255.0)
    x = transforms(x).contiguous(memory_format=memory_format)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        return extractor(x)


def _layer_values(outputs: dict, spec: dict, label: str, key: str, batch_no: int) -> np.ndarray:
    layer = spec["layers"][label]
    try:
        out = reduce_output(outputs[layer["graph_node"]], layer["reduce"])
    except ValueError as exc:
        raise ConfigError(f"{key}.layers.{label}.reduce", f"{exc} (node {layer['node']!r})") from None
    values = out.float().cpu().numpy()
    try:
        check_finite(values, "activations")
    except ValueError as exc:
        raise RsaflowError(
            f"{key}.layers.{label} (node {layer['node']!r}): {exc} in batch {batch_no} "
            "(a diverged checkpoint? bfloat16 overflow?); nothing was written"
        ) from None
    return values


def _setup(spec: dict, threads: int, gpus_requested: int):
    torch.set_num_threads(threads)
    device = resolve_device(spec["device"])
    if device.type == "cuda":
        _prepare_cuda()
    log.info("device: %s (%s); torch %s, %d threads", device, device_name(device), torch.__version__, threads)
    if gpus_requested and device.type == "cpu":
        log.warning(
            "this job declared gpu=%s but no GPU is visible (CUDA_VISIBLE_DEVICES=%r): running on the CPU",
            gpus_requested, os.environ.get("CUDA_VISIBLE_DEVICES"),
        )
    return device


def _resolve_layers(model, spec: dict, key: str) -> dict:
    """Each layer's graph node and depth; the unique graph nodes to return, in depth order."""
    nodes = graph_nodes(model)
    for label, layer in spec["layers"].items():
        resolved, depth = modelspec.select_node(layer["node"], nodes, spec["arch"], f"{key}.layers.{label}")
        layer.update(graph_node=resolved, node_index=depth)
    return sorted({layer["graph_node"] for layer in spec["layers"].values()}, key=nodes.index)


def extract_model(stimuli_path, out_dir, spec: dict, threads: int, base_attrs: dict, gpus_requested: int = 0) -> dict:
    """Run the stimuli through one model ONCE and stream every requested layer to ``out_dir/<label>.h5``.

    spec: ``{"model": key, "arch", "weights", "seed" (weights none only), "layers": {label: {"node",
    "reduce"}}, "batch_size", "device", "precision", "channels_last"}``. Each layer file holds
    dataset ``activations`` (N, M) float32 and the attributes of its layer (its config slice is
    :func:`layer_slice`), including ``data_sha256``, the sha256 of its values (float32, C order).
    There are exactly ceil(N / batch_size) forward passes; memory is bounded by one batch of all
    requested node outputs, whatever N is. Files appear only when all are complete: they are
    written in a temporary folder beside ``out_dir`` that is renamed to ``out_dir`` at the end.
    Returns a summary dict.
    """
    key = f"models.{spec['model']}"
    spec = {**spec, "layers": {k: dict(v) for k, v in spec["layers"].items()}}
    device = _setup(spec, threads, gpus_requested)
    model, transforms, weights_prov = load_model(spec["arch"], spec["weights"], spec.get("seed", 0), key)
    returned = _resolve_layers(model, spec, key)
    extractor = create_feature_extractor(model, return_nodes={n: n for n in returned}).eval()
    memory_format = torch.channels_last if spec["channels_last"] else torch.contiguous_format
    extractor = extractor.to(device).to(memory_format=memory_format)
    transforms = transforms.to(device) if isinstance(transforms, torch.nn.Module) else transforms
    out_dir = Path(out_dir)
    tmp_dir = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    for stale in out_dir.parent.glob(f".{out_dir.name}.tmp-*"):  # left by a killed job
        shutil.rmtree(stale, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    try:
        summary = _run_batches(stimuli_path, tmp_dir, spec, extractor, device, transforms, memory_format,
                               {**base_attrs, **weights_prov})
        if out_dir.exists():  # Snakemake may have created the (empty) output folder
            shutil.rmtree(out_dir)
        os.replace(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    log.info("done: %s, %d layers on %s (%s), N=%d, %d forward passes, %.2f s", spec["model"], len(spec["layers"]),
             summary["device"], summary["device_name"], summary["n_stimuli"], summary["forward_passes"],
             summary["seconds"])
    return summary


def _run_batches(stimuli_path, tmp_dir, spec, extractor, device, transforms, memory_format, attrs) -> dict:
    key = f"models.{spec['model']}"
    labels = sorted(spec["layers"])
    autocast = spec["precision"] == "bfloat16"
    with h5io.open_artifact(stimuli_path, "stimuli") as sf, contextlib.ExitStack() as stack:
        images = sf["images"]
        n, batch = images.shape[0], spec["batch_size"]
        files = {label: stack.enter_context(h5io.atomic_h5(tmp_dir / f"{label}.h5", "activations")) for label in labels}
        writers = {label: _LayerWriter(files[label], n, batch) for label in labels}
        n_batches, start, passes = -(-n // batch), time.perf_counter(), 0
        for b, (lo, x) in enumerate(_batches(images, batch, pin=device.type == "cuda")):
            outputs = _forward(extractor, x, device, transforms, memory_format, autocast)
            passes += 1
            for label in labels:
                writers[label].write(lo, _layer_values(outputs, spec, label, key, b + 1))
            del outputs
            done = min(lo + batch, n)
            rate = done / max(time.perf_counter() - start, 1e-9)
            log.info("[%-20s] batch %d/%d, %d/%d images, %.1f images/s", "#" * (20 * (b + 1) // n_batches),
                     b + 1, n_batches, done, n, rate)
        seconds = time.perf_counter() - start
        summary = {"device": str(device), "device_name": device_name(device), "n_stimuli": n,
                   "forward_passes": passes, "seconds": round(seconds, 3),
                   "n_units": {label: int(w.dset.shape[1]) for label, w in writers.items()}}
        for label in labels:
            layer = spec["layers"][label]
            h5io.set_attrs(files[label], {
                **attrs,
                "config": layer_slice(spec, label),
                "arch": spec["arch"], "model": spec["model"], "layer": label, "node": layer["node"],
                "graph_node": layer["graph_node"], "node_index": layer["node_index"], "reduce": layer["reduce"],
                "stimulus_digest": sf.attrs["digest"], "device": str(device), "device_name": device_name(device),
                "data_sha256": writers[label].digest(),
                "versions": {**attrs.get("versions", {}), **versions("torch", "torchvision")},
            })
            log.info("%s/%s (node %s, %s): N=%d, M=%d, data sha256 %s", spec["model"], label, layer["node"],
                     layer["reduce"], n, summary["n_units"][label], writers[label].digest())
    return summary
