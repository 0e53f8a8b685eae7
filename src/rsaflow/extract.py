"""Activation extraction: the stimuli through one model once, every requested layer streamed to
its own HDF5 file. With :mod:`rsaflow.layers`, :mod:`rsaflow.checkpoints` and the source modules
under :mod:`rsaflow.sources`, the only code of rsaflow that imports torch.

A model entry's ``source`` (rsaflow.sources.SOURCES) builds the model and its preprocessing
(:func:`build_model` looks the record up); a layer is a graph node or a module name
(rsaflow.layers) plus a reduction of its output to one vector per stimulus:

- ``flatten``: all output values, reshaped to (N, M) in C order (the tutorial's squeeze for
  ResNet-50's (N, 2048, 1, 1) avgpool);
- ``cls``: token 0 of a (N, tokens, D) output, the class token of a vision transformer (the
  tutorial's ViT-B/16 reduction); ``last``: the last token;
- ``mean``: the average over spatial positions (N, C, H, W) -> (N, C) (or (N, H, W, C) with the
  layer's ``layout: NHWC``) or tokens (N, T, D) -> (N, D); ``mean_patches``: the average of the
  patch tokens, without the class and register tokens.

Images are converted to float in [0, 1] before a torchvision weights' transforms (on the device,
as in the tutorial); a library's own transform (timm, OpenCLIP, a Hugging Face image processor)
gets the uint8 images as that library expects them (PIL images, arrays).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from rsaflow import h5io, modelspec, shards, sources
from rsaflow.errors import ConfigError, RsaflowError
from rsaflow.finite import check_finite
from rsaflow.layers import Built, layer_names, make_extractor, reduce_output
from rsaflow.modelspec import layer_slice
from rsaflow.provenance import versions
# The source modules, imported by name through the registry; listed here so that their code joins
# the extraction's code digest (rsaflow.deps follows imports).
from rsaflow.sources import clip_models, hf_models, python_models, timm_models, torchvision_models  # noqa: F401

log = logging.getLogger(__name__)


def build_model(spec: dict, key: str) -> Built:
    """The model of ``spec`` built by its source's module (rsaflow.sources.SOURCES[...].impl)."""
    record = sources.get(spec.get("source", sources.DEFAULT_SOURCE), f"{key}.source")
    return importlib.import_module(record.impl).build(spec, key)


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


def _prepare_cuda() -> None:
    """Deterministic CUDA kernels (a rerun on the same device writes the same bytes, which the
    content-addressed reuse relies on) and no TF32: ``precision: float32`` means float32."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before cuBLAS starts
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


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


def _forward(extractor, x, device, built: Built, memory_format, autocast: bool) -> dict:
    """One batch: uint8 (B, 3, H, W) to the device, to float in [0, 1], the weights' transforms
    there; or the source's own CPU transform, then to the device."""
    if built.device_transform is not None:
        x = x.to(device, non_blocking=True).to(torch.float32).div_(255.0)
        x = built.device_transform(x)
    else:
        x = built.cpu_transform(x).to(device, non_blocking=True)
    x = x.contiguous(memory_format=memory_format)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        return extractor(x)


def _layer_values(outputs: dict, spec: dict, label: str, key: str, batch_no: int, prefix: int | None) -> np.ndarray:
    layer = spec["layers"][label]
    try:
        out = reduce_output(outputs[layer["graph_node"]], layer["reduce"], layer.get("layout", "NCHW"), prefix)
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


def _resolve_layers(model, spec: dict, key: str) -> tuple[str, list[str]]:
    """Each layer's graph node (or module) and depth; (``fx`` or ``modules``, the unique nodes to
    return, in depth order)."""
    record = sources.get(spec.get("source", sources.DEFAULT_SOURCE))
    try:
        layers_by, nodes = layer_names(model, record.tracing, spec.get("layers_by", "auto"))
    except ValueError as exc:
        raise ConfigError(f"{key}.layers_by", str(exc)) from None
    searched = record.searched(spec["arch"], sources.library_version(record), layers_by)
    for label, layer in spec["layers"].items():
        resolved, depth = modelspec.select_node(layer["node"], nodes, spec["arch"], f"{key}.layers.{label}",
                                                searched, record.layers_command(spec["arch"]))
        layer.update(graph_node=resolved, node_index=depth)
    return layers_by, sorted({layer["graph_node"] for layer in spec["layers"].values()}, key=nodes.index)


def _provenance(spec: dict, built: Built, layers_by: str) -> dict:
    """Attributes of every layer file of the model beyond its config: weights, source, library."""
    record = sources.get(spec.get("source", sources.DEFAULT_SOURCE))
    prov = {**built.prov, "source": record.name, "layers_by": layers_by}
    version = sources.library_version(record)
    if record.keyed_version:
        prov["library_version"] = f"{record.package}=={version}"
    return prov


def extract_model(stimuli_path, out_dir, spec: dict, threads: int, base_attrs: dict, gpus_requested: int = 0) -> dict:
    """Run the stimuli through one model ONCE and stream every requested layer to ``out_dir/<label>.h5``.

    spec: ``{"model": key, "arch", "weights", "seed" (weights none only), "layers": {label: {"node",
    "reduce"}}, "batch_size", "device", "precision", "channels_last"}``. Each layer file holds
    dataset ``activations`` (N, M) float32 and the attributes of its layer (its config slice is
    :func:`layer_slice`), including ``data_sha256``, the sha256 of its values (float32, C order).
    Per-stimulus reuse (:mod:`rsaflow.shards`): only the images that no stored shard of some
    layer holds are forwarded, each distinct image once, in ceil(F / batch_size) passes (a cold
    run: exactly ceil(N / batch_size), the images in their order, as before); their rows go to one
    new shard per layer, and every layer file is then written in the stimulus order from the
    shards. The log says ``<model>: forwarded F images, reused R from S shards``. A reused row is
    the stored row bit for bit; an assembled file equals a cold extraction of the same set within
    rtol 1e-5 (atol 1e-6 x max |value|), the tolerance the tests assert: on the CPU the batch
    composition changes the last bits (convolutions in a batch of one image; fully connected
    layers whenever the batch size changes: up to 7e-7 of the largest value measured; see
    docs/reruns.md). Memory is bounded by one batch of all requested
    node outputs, whatever N is. Files appear only when all are complete: they are written in a
    temporary folder beside ``out_dir`` that is renamed to ``out_dir`` at the end, with the
    manifest ``.shards.json`` of the shards used. Returns a summary dict (``forwarded``,
    ``reused``, ``forward_passes``, ...).
    """
    key = f"models.{spec['model']}"
    spec = {**spec, "layers": {k: dict(v) for k, v in spec["layers"].items()}}
    device = _setup(spec, threads, gpus_requested)
    built = build_model(spec, key)
    layers_by, returned = _resolve_layers(built.model, spec, key)
    memory_format = torch.channels_last if spec["channels_last"] else torch.contiguous_format

    def extractor_on_device():
        """Made only when some image is forwarded (a subset or reorder never traces the model twice)."""
        extractor = make_extractor(built, layers_by, returned).eval()
        extractor = extractor.to(device).to(memory_format=memory_format)
        if isinstance(built.device_transform, torch.nn.Module):
            built.device_transform = built.device_transform.to(device)
        return extractor

    out_dir = Path(out_dir)
    tmp_dir = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    for stale in out_dir.parent.glob(f".{out_dir.name}.tmp-*"):  # left by a killed job
        shutil.rmtree(stale, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    try:
        summary = _run_batches(stimuli_path, tmp_dir, spec, extractor_on_device, device, built, memory_format,
                               {**base_attrs, **_provenance(spec, built, layers_by)})
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


def _static_attrs(spec, label, attrs, device, package) -> dict:
    """A layer file's attributes that do not depend on the stimulus set (its layer key's input)."""
    layer = spec["layers"][label]
    return {
        **attrs,
        "config": layer_slice(spec, label),
        "arch": spec["arch"], "model": spec["model"], "layer": label, "node": layer["node"],
        "graph_node": layer["graph_node"], "node_index": layer["node_index"], "reduce": layer["reduce"],
        "device": str(device), "device_name": device_name(device),
        "versions": {**attrs.get("versions", {}), **versions("torch", "torchvision", *filter(None, [package]))},
    }


def _read_rows(images, positions: np.ndarray) -> np.ndarray:
    """``images[positions]`` (ascending positions): one slice when they are contiguous."""
    lo, hi = int(positions[0]), int(positions[-1]) + 1
    if hi - lo == len(positions):
        return images[lo:hi]
    if hi - lo <= 4 * len(positions):
        return images[lo:hi][positions - lo]
    return images[positions]


def _forward_batches(images, positions: np.ndarray, batch: int, pin: bool):
    """uint8 batches of ``images[positions]`` as CPU tensors, the next one read by a background
    thread while the current one runs; pinned when ``pin`` (for non-blocking copies)."""
    from concurrent.futures import ThreadPoolExecutor

    def read(lo):
        x = torch.from_numpy(np.ascontiguousarray(_read_rows(images, positions[lo : lo + batch])))
        return x.pin_memory() if pin else x

    starts = list(range(0, len(positions), batch))
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(read, starts[0]) if starts else None
        for i, lo in enumerate(starts):
            x = pending.result()
            pending = pool.submit(read, starts[i + 1]) if i + 1 < len(starts) else None
            yield lo, x


def _run_batches(stimuli_path, tmp_dir, spec, make_extractor_on_device, device, built, memory_format, attrs) -> dict:
    """Forward the images no shard holds for some layer (rsaflow.shards), one new shard per layer
    for them, then assemble every layer file in the stimulus order from the shards."""
    key = f"models.{spec['model']}"
    labels = sorted(spec["layers"])
    autocast = spec["precision"] == "bfloat16"
    package = sources.get(spec.get("source", sources.DEFAULT_SOURCE)).package
    static = {label: _static_attrs(spec, label, attrs, device, package) for label in labels}
    keys = {label: shards.layer_key(static[label]) for label in labels}
    indexes = {label: shards.ShardIndex(keys[label]) for label in labels}
    with h5io.open_artifact(stimuli_path, "stimuli") as sf:
        images = sf["images"]
        n, batch = images.shape[0], spec["batch_size"]
        digests = shards.image_digests(images)
        old = {label: [d in indexes[label] for d in digests] for label in labels}
        # Each image that some layer lacks, once (its first position), in the stimulus order.
        todo, seen = [], set()
        for i, d in enumerate(digests):
            if d not in seen and not all(old[label][i] for label in labels):
                seen.add(d)
                todo.append(i)
        positions = np.array(todo, dtype=np.int64)
        start, passes, extractor = time.perf_counter(), 0, None
        if len(positions):
            extractor = make_extractor_on_device()
            passes = _forward_into_shards(images, positions, digests, spec, labels, extractor, device, built,
                                          memory_format, autocast, static, keys, indexes, key)
        forward_seconds = time.perf_counter() - start
        reused_from = {label: indexes[label].used([d for d, o in zip(digests, old[label]) if o]) for label in labels}
        n_reused = sum(all(old[label][i] for label in labels) for i in range(n))
        n_shards = len({p for paths in reused_from.values() for p in paths})
        log.info("%s: forwarded %d images, reused %d from %d shards (N=%d, %d forward passes)", spec["model"],
                 len(positions), n_reused, n_shards, n, passes)
        used = {}
        n_units = {}
        for label in labels:
            index, layer = indexes[label], spec["layers"][label]
            with contextlib.closing(index):
                n_units[label], sha = _assemble(index, digests, tmp_dir / f"{label}.h5", batch, {
                    **static[label],
                    **({"output_taken": taken} if (taken := _taken(extractor, index, layer, len(positions))) else {}),
                    "stimulus_digest": sf.attrs["digest"],
                })
            used[label] = index.used(digests)
            log.info("%s/%s (node %s, %s): N=%d, M=%d, data sha256 %s (layer key %s)", spec["model"], label,
                     layer["node"], layer["reduce"], n, n_units[label], sha, keys[label])
        shards.write_manifest(tmp_dir, used)
    seconds = time.perf_counter() - start
    return {"device": str(device), "device_name": device_name(device), "n_stimuli": n,
            "forward_passes": passes, "forwarded": len(positions), "reused": n_reused, "shards_reused": n_shards,
            "forward_seconds": round(forward_seconds, 3), "seconds": round(seconds, 3), "n_units": n_units}


def _taken(extractor, index, layer: dict, forwarded: int):
    """How the layer's output was taken (rsaflow.layers.first_tensor), from this run's forward
    passes, or from the shards when there were none."""
    if forwarded:
        return getattr(extractor, "taken", {}).get(layer["graph_node"])
    return index.attrs.get("output_taken")


def _assemble(index, digests: list[str], path, batch: int, attrs: dict) -> tuple[int, str]:
    """Write the layer file ``path``: the rows of ``digests`` from the shards, in that order, in
    chunks of ``batch`` rows as a cold run writes them; ``data_sha256`` added to ``attrs``.
    Returns (M, data sha256)."""
    with h5io.atomic_h5(path, "activations") as f:
        writer = _LayerWriter(f, len(digests), batch)
        for lo in range(0, len(digests), batch):
            writer.write(lo, index.rows(digests[lo : lo + batch]))
        h5io.set_attrs(f, {**attrs, "data_sha256": writer.digest()})
        return int(writer.dset.shape[1]), writer.digest()


def _forward_into_shards(images, positions, digests, spec, labels, extractor, device, built, memory_format,
                         autocast, static, keys, indexes, key) -> int:
    """Run ``images[positions]`` through the model; for each layer, the rows its shards lack go
    to one new shard (streamed, so memory is one batch of outputs). Returns the forward passes."""
    batch = spec["batch_size"]
    lacking = {label: np.array([digests[i] not in indexes[label] for i in positions]) for label in labels}
    writers = {label: shards.ShardWriter(keys[label], [digests[i] for i, m in zip(positions, lacking[label]) if m],
                                         static[label], chunk_rows=batch)
               for label in labels if lacking[label].any()}
    n_batches, start, passes, done = -(-len(positions) // batch), time.perf_counter(), 0, 0
    with contextlib.ExitStack() as stack:
        for w in writers.values():
            stack.enter_context(w)
        for b, (lo, x) in enumerate(_forward_batches(images, positions, batch, pin=device.type == "cuda")):
            outputs = _forward(extractor, x, device, built, memory_format, autocast)
            passes += 1
            for label, w in writers.items():
                mask = lacking[label][lo : lo + len(x)]
                if mask.any():
                    w.write(_layer_values(outputs, spec, label, key, b + 1, built.prefix_tokens)[mask])
            del outputs
            done += len(x)
            rate = done / max(time.perf_counter() - start, 1e-9)
            log.info("[%-20s] batch %d/%d, %d/%d images, %.1f images/s", "#" * (20 * (b + 1) // n_batches),
                     b + 1, n_batches, done, len(positions), rate)
        for label, w in writers.items():
            taken = getattr(extractor, "taken", {}).get(spec["layers"][label]["graph_node"])
            if taken:
                w.attrs["output_taken"] = taken
    for label, w in writers.items():
        indexes[label].add(w.path)
    return passes
