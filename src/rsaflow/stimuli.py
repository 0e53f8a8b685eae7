"""Stimulus sets: selection, loading, order, and the digest that ties every artifact to its stimuli.

Sources (config ``stimuli.source``; one :class:`StimulusSource` record each in :data:`SOURCES`):

- ``cifar10``: the CIFAR10 test split read from torchvision's on-disk layout
  (``<root>/cifar-10-batches-py/test_batch`` and ``batches.meta``, Python pickles);
  torchvision downloads it only when ``download: true``.
- ``digits``: scikit-learn's bundled 8x8 handwritten digits (offline), scaled 0..16 -> 0..255.
- ``folder``: one subfolder per class under ``root``, any image format Pillow reads.

Selection is the tutorial's for every source (:func:`select_per_class`: a seeded shuffle decides
*which* ``per_class`` images of each class are kept). The *order* of the kept stimuli is grouped
by class (ascending label) and, within a class, the source's ``order``:

- ``cifar10`` and ``digits``: ``selection``, the order the shuffle met them (the tutorial's order
  exactly);
- ``folder``: ``sorted``, sorted path order (classes sorted by folder name, files by file name),
  so that a person can predict the order without running anything; ``per_class`` only decides
  which files are kept.

The stimuli job writes that order as ``results/stimuli/order.tsv`` (:func:`order_table`). Images
are stored as uint8 arrays of shape (N, 3, H, W). This module never imports torch (torchvision
is imported only to download CIFAR10 on request).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from rsaflow.errors import ConfigError, InputFileError

CIFAR10_DIR = "cifar-10-batches-py"
#: md5 sums of the official release's files, as torchvision checks them.
CIFAR10_MD5 = {"test_batch": "40351d587109b95175f43aff81a1287e", "batches.meta": "5ff9c542aee3614f3951f8cda6e48888"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def select_per_class(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Indices of the selected stimuli, grouped by class, as in the tutorial.

    Seeds Python's ``random`` with ``seed``, shuffles ``list(range(len(labels)))``, walks the
    shuffled order keeping the first ``per_class`` indices of each class, then orders them by
    class label (ascending) and, within a class, in the order they were kept.
    ``per_class=None`` keeps every image. Raises ValueError when a class has fewer images.
    """
    labels = np.asarray(labels)
    order = list(range(len(labels)))
    random.Random(seed).shuffle(order)  # same sequence as random.seed(seed); random.shuffle(order)
    classes = np.unique(labels)
    limit = len(labels) if per_class is None else per_class
    kept: dict = {int(c): [] for c in classes}
    for idx in order:
        bucket = kept[int(labels[idx])]
        if len(bucket) < limit:
            bucket.append(idx)
    if per_class is not None:
        short = {c: len(v) for c, v in kept.items() if len(v) < per_class}
        if short:
            raise ValueError(f"per_class={per_class} but some classes have fewer images: {short}")
    return np.array([i for c in sorted(kept) for i in kept[c]], dtype=np.int64)


def stimulus_digest(images: np.ndarray, labels: np.ndarray, indices: np.ndarray, class_names: list[str]) -> str:
    """sha256 of the ordered stimulus set (pixels, labels, source indices, class names)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    h.update(np.asarray(labels, dtype="<i8").tobytes())
    h.update(np.asarray(indices, dtype="<i8").tobytes())
    h.update(json.dumps(list(class_names)).encode())
    h.update(repr(tuple(images.shape)).encode())
    return h.hexdigest()


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _download_cifar10(root: Path) -> None:
    try:
        from torchvision.datasets import CIFAR10
    except ImportError as exc:  # pragma: no cover - torchvision is a dependency of the workflow
        raise ConfigError("stimuli.download", f"downloading CIFAR10 needs torchvision ({exc})") from None
    try:
        CIFAR10(root=str(root), train=False, download=True)
    except Exception as exc:  # urllib errors, timeouts, disk errors
        raise ConfigError(
            "stimuli.download",
            f"could not download CIFAR10 into {root} ({type(exc).__name__}: {exc}). Offline? Copy the "
            f"extracted '{CIFAR10_DIR}' folder (from cifar-10-python.tar.gz) into {root}",
        ) from None


def load_cifar10(root: str | Path, download: bool = False) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """The CIFAR10 test split: images (10000, 3, 32, 32) uint8, labels, class names, provenance."""
    root = Path(root)
    folder = root / CIFAR10_DIR
    test_batch, meta = folder / "test_batch", folder / "batches.meta"
    if not (test_batch.exists() and meta.exists()):
        if download:
            _download_cifar10(root)
        else:
            raise ConfigError(
                "stimuli.root",
                f"CIFAR10 test split not found: expected {test_batch} and {meta}. Put the extracted "
                f"'{CIFAR10_DIR}' folder of cifar-10-python.tar.gz under {root}, or set stimuli.download: true "
                "where the network is available, or use stimuli.source: digits for the offline demo",
            )
    try:
        with open(test_batch, "rb") as fh:
            batch = pickle.load(fh, encoding="latin1")
        with open(meta, "rb") as fh:
            class_names = list(pickle.load(fh, encoding="latin1")["label_names"])
        data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as exc:
        raise InputFileError(folder, f"not a CIFAR10 python-format folder ({type(exc).__name__}: {exc})") from None
    if len(labels) != len(data):
        raise InputFileError(test_batch, f"{len(data)} images but {len(labels)} labels")
    md5 = {name: _md5(folder / name) for name in CIFAR10_MD5}
    provenance = {
        "root": str(root.resolve()),
        "md5": md5,
        "official_release": md5 == CIFAR10_MD5,
    }
    return data, labels, class_names, provenance


def load_digits_set() -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """scikit-learn's bundled digits as uint8 (1797, 3, 8, 8), grey replicated to 3 channels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    grey = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    images = np.repeat(grey[:, None, :, :], 3, axis=1)
    import sklearn

    return images, bunch.target.astype(np.int64), [str(c) for c in bunch.target_names], {"sklearn": sklearn.__version__}


def load_folder(root: str | Path, size: list[int] | None = None) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """Images from ``root/<class>/<file>``; resized to ``size`` = [H, W] when given (bilinear).

    Without ``size`` all images must share one size; otherwise a ConfigError names two that differ.
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    if not root.is_dir():
        raise ConfigError("stimuli.root", f"folder {root} does not exist")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ConfigError("stimuli.root", f"{root} has no class subfolders (expected {root}/<class>/<image files>)")
    arrays, labels, files = [], [], []
    for label, name in enumerate(classes):
        paths = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise ConfigError("stimuli.root", f"class folder {root / name} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        for path in paths:
            try:
                with Image.open(path) as img:
                    img = img.convert("RGB")
                    if size is not None:
                        img = img.resize((size[1], size[0]), Image.BILINEAR)
                    arrays.append(np.asarray(img, dtype=np.uint8).transpose(2, 0, 1))
            except (UnidentifiedImageError, OSError) as exc:
                raise InputFileError(path, f"cannot read image: {exc}") from None
            labels.append(label)
            files.append(str(path.relative_to(root)))
    other = next((i for i, a in enumerate(arrays) if a.shape != arrays[0].shape), None)
    if other is not None:
        raise ConfigError(
            "stimuli.size",
            f"images differ in size ({files[0]}: {arrays[0].shape[1:]}, {files[other]}: {arrays[other].shape[1:]}); "
            "set stimuli.size: [H, W] to resize them",
        )
    return np.stack(arrays), np.asarray(labels, dtype=np.int64), classes, {"root": str(root.resolve()), "files": files}


@dataclass(frozen=True)
class StimulusSource:
    """One ``stimuli.source``: how its images are loaded and in which order the kept ones come."""

    name: str
    #: spec -> (images (N, 3, H, W) uint8, labels, class names, provenance); the source's own order
    load: Callable[[dict], tuple]
    #: ``"selection"``: within a class, the order the seeded shuffle met the kept images (the
    #: tutorial's); ``"sorted"``: the source's own order (sorted paths for a folder)
    order: str


SOURCES = {
    s.name: s
    for s in (
        StimulusSource("cifar10", lambda spec: load_cifar10(spec["root"], spec.get("download", False)), "selection"),
        StimulusSource("digits", lambda spec: load_digits_set(), "selection"),
        StimulusSource("folder", lambda spec: load_folder(spec["root"], spec.get("size")), "sorted"),
    )
}


def ordered(indices: np.ndarray, labels: np.ndarray, order: str) -> np.ndarray:
    """The kept ``indices`` (grouped by class, as :func:`select_per_class` returns them) in the
    source's ``order``: unchanged for ``selection``; ascending source index within each class for
    ``sorted`` (classes stay in ascending label order)."""
    if order == "selection":
        return indices
    return indices[np.lexsort((indices, labels[indices]))]


def build_stimulus_set(spec: dict) -> dict:
    """Load the source named in ``spec`` (the config's ``stimuli`` slice), select from it and order it.

    Returns a dict with ``images`` (N, 3, H, W) uint8, ``labels``, ``indices`` (into the source),
    ``class_names``, ``digest`` and ``provenance``.
    """
    source = SOURCES.get(spec["source"])
    if source is None:
        raise ConfigError("stimuli.source", f"unknown source {spec['source']!r}; choose {', '.join(SOURCES)}")
    images, labels, class_names, prov = source.load(spec)
    try:
        indices = select_per_class(labels, spec.get("per_class"), spec["seed"])
    except ValueError as exc:
        counts = {class_names[int(c)]: int(n) for c, n in zip(*np.unique(labels, return_counts=True))}
        raise ConfigError("stimuli.per_class", f"{exc}; images per class in {source.name}: {counts}") from None
    indices = ordered(indices, labels, source.order)
    if "files" in prov:
        prov["files"] = [prov["files"][i] for i in indices]
    selected = images[indices]
    sel_labels = labels[indices]
    return {
        "images": selected,
        "labels": sel_labels,
        "indices": indices,
        "class_names": class_names,
        "digest": stimulus_digest(selected, sel_labels, indices, class_names),
        "provenance": prov,
    }


#: Columns of ``results/stimuli/order.tsv``.
ORDER_COLUMNS = ("position", "id", "class")


def order_table(ids: list[str], labels, class_names: list[str]) -> str:
    """The stimulus order as tab-separated text: a header ``position  id  class``, then one row per
    stimulus in the workflow's order; ``position`` counts from 0 (the row and column of an RDM),
    ``id`` is what external RDMs and responses are matched on (the file path relative to the root
    for a folder source, else the index into the source)."""
    rows = ["\t".join(ORDER_COLUMNS)]
    rows += [f"{i}\t{sid}\t{class_names[int(lab)]}" for i, (sid, lab) in enumerate(zip(ids, labels))]
    return "\n".join(rows) + "\n"
