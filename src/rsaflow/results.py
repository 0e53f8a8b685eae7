"""Reading rsaflow's results: one torch-free module for notebooks and for the workflow's own jobs.

Every artifact the workflow writes is read here (figures and the rsatoolbox export use these
functions too), with the file's kind and layout checked (:func:`rsaflow.h5io.open_artifact`)::

    from rsaflow import results

    stim = results.read_stimuli("results/stimuli/stimuli.h5")              # images, labels, ...
    acts = results.read_activations("results/activations/resnet50/avgpool.h5")  # (N, M) float32
    rdm = results.read_rdm("results/rdms/euclidean/resnet50/avgpool.h5", square=True)["rdm"]  # (N, N)
    so = results.read_second_order("results/second_order/main/matrix.h5")   # matrix, labels, ...
    rdms = results.to_rsatoolbox(["results/rdms/euclidean/resnet50/avgpool.h5", ...])  # rsatoolbox RDMs

Imports only numpy, scipy and h5py (plus rsatoolbox inside :func:`to_rsatoolbox`).
"""

from __future__ import annotations

import numpy as np

from rsaflow import h5io
from rsaflow.errors import InputFileError


def read_stimuli(path, images: bool = True) -> dict:
    """``images`` (N, 3, H, W) uint8 (left out with ``images=False``), ``labels``, ``indices`` (into
    the source), ``class_names``, ``digest`` (sha256 of the ordered set) and ``path``."""
    with h5io.open_artifact(path, "stimuli") as f:
        out = {"labels": f["labels"][()], "indices": f["indices"][()], "class_names": h5io.texts(f["class_names"][()]),
               "digest": f.attrs["digest"], "path": str(path)}
        if images:
            out["images"] = f["images"][()]
    return out


def stimulus_ids(path) -> list[str]:
    """The ids external RDMs are matched on, in the stimulus order: each image's path relative to
    the root for a folder source (``circles/img02.jpg``), else the index into the source (``'3'``)."""
    with h5io.open_artifact(path, "stimuli") as f:
        source = h5io.read_attrs(f).get("source", {})
        return [str(s) for s in source.get("files") or f["indices"][()].tolist()]


def read_activations(path) -> tuple[np.ndarray, dict]:
    """A layer's (N, M) float32 activations and its provenance attributes (JSON decoded)."""
    with h5io.open_artifact(path, "activations") as f:
        return f["activations"][()], h5io.read_attrs(f)


def rdm_record(f, path) -> dict:
    """The record of an open RDM (or CKA Gram) file: what :func:`read_rdm` returns, without values."""
    a = f.attrs
    key = a.get("content_key")
    return {
        "label": f"{a['model']}/{a['layer']}",
        "model": str(a["model"]),
        "layer": str(a["layer"]),
        "digest": a["stimulus_digest"],
        "depth": int(a.get("node_index", -1)),
        "path": str(path),
        "content_key": None if key is None else str(key),
        "n_stimuli": int(a["n_stimuli"]) if "n_stimuli" in a else None,
        "metric": str(a["metric"]) if "metric" in a else None,
    }


def read_rdm(path, square: bool = False, ranks: bool = False) -> dict:
    """One RDM file as a record; THE reader of RDM files (the square matrix on request).

    Keys: ``label`` (``model/layer``), ``model``, ``layer``, ``digest`` (the stimulus digest),
    ``depth`` (node index, -1 for external RDMs), ``path``, ``content_key`` (the store key: equal
    keys, equal content), ``n_stimuli``, ``condensed`` (P,) float64, the upper triangle in
    ``scipy.spatial.distance.squareform`` order, and with ``square=True`` ``rdm``: the (N, N)
    float64 matrix (exactly symmetric, exactly 0 on the diagonal); with ``ranks=True`` ``ranks``:
    the stored average ranks 1..P of ``condensed`` (rsaflow.rdmfile). Memory: 8 P bytes, plus 8 N^2
    for the square, plus 8 P for the ranks.
    """
    with h5io.open_artifact(path, "rdm") as f:
        out = rdm_record(f, path)
        out["condensed"] = f["condensed"][()]
        if ranks:
            out["ranks"] = f["ranks"][()]
    if square:
        from scipy.spatial.distance import squareform  # here: scipy.spatial costs jobs 0.26 s of import

        out["rdm"] = squareform(out["condensed"], checks=False)
    return out


def read_meta(path, kind: str = "rdm") -> dict:
    """:func:`read_rdm`'s record without the values (attributes only); also for ``cka`` files."""
    with h5io.open_artifact(path, kind) as f:
        return rdm_record(f, path)


def check_same_stimuli(records: list[dict]) -> str:
    """Refuse records (``digest``, ``path``) of different stimulus sets; return the shared digest."""
    first = records[0]
    for r in records[1:]:
        if r["digest"] != first["digest"]:
            raise InputFileError(
                r["path"],
                f"stimulus digest {r['digest']} differs from {first['digest']} of {first['path']}: "
                "these RDMs were computed on different stimulus sets (rerun the workflow to rebuild them)",
            )
    return first["digest"]


def rdms_on_stimuli(rdm_paths, stimuli_path, square: bool = True) -> tuple[list[dict], dict]:
    """RDM records (:func:`read_rdm`, ``rdm`` square unless ``square=False``) sorted by label, and
    the stimuli (:func:`read_stimuli`); refuses RDMs of another stimulus set."""
    records = sorted((read_rdm(p, square=square) for p in rdm_paths), key=lambda r: r["label"])
    stimuli = read_stimuli(stimuli_path)
    check_same_stimuli([stimuli, *records])
    return records, stimuli


def read_subjects(path) -> np.ndarray | None:
    """An external group's subjects' RDMs, (S, P) float64 upper triangles in squareform order
    (dataset ``subjects`` of ``results/external/<name>.h5``); None for a file of one RDM."""
    with h5io.open_artifact(path, "rdm") as f:
        return f["subjects"][()] if "subjects" in f else None


def read_second_order(path) -> dict:
    """``matrix`` (K, K) of 1 - similarity, ``labels`` (``model/layer``), ``models``, ``depth``, ``method``
    and, when inference ran, ``ci_lower``, ``ci_upper``, ``boot_std``, ``p_values`` (each K x K).

    When external groups joined (rsaflow.jobs.second_order.group_ceilings), also, indexed like
    ``labels`` (NaN / 0 outside group rows and columns): ``noise_ceiling_lower``,
    ``noise_ceiling_upper`` (K,), rsatoolbox's noise ceilings of each group; ``n_subjects`` (K,);
    ``subject_similarity`` (K, K): column g of a group g, row i the mean over g's subjects s of
    sim(RDM_i, RDM_s) (rsatoolbox's ``eval_fixed``), and ``subject_similarity_sem`` (K, K) its
    standard error std_s / sqrt(S) (ddof 0, as rsatoolbox's ``eval_fixed`` variances).
    """
    with h5io.open_artifact(path, "second_order") as f:
        out = {name: f[name][()] for name in f}
        out["labels"] = h5io.texts(out["labels"])
        out["models"] = h5io.texts(out["models"])
        out["method"] = str(f.attrs["method"])
    return out


def to_rsatoolbox(rdm_paths):
    """RDM files as one ``rsatoolbox.rdm.RDMs`` (needs rsatoolbox), descriptors ``model``, ``layer``,
    ``name`` and ``metric`` per RDM; ``dissimilarity_measure`` is rsaflow's metric name when all agree."""
    try:
        from rsatoolbox.rdm import RDMs
    except ImportError as exc:
        raise ImportError("rsaflow.results.to_rsatoolbox needs rsatoolbox: pip install rsatoolbox") from exc

    records = [read_rdm(p) for p in rdm_paths]
    metrics = [r["metric"] or "external" for r in records]
    check_same_stimuli(records)
    return RDMs(np.stack([r["condensed"] for r in records]),
                dissimilarity_measure=metrics[0] if len(set(metrics)) == 1 else "mixed",
                rdm_descriptors={"model": [r["model"] for r in records], "layer": [r["layer"] for r in records],
                                 "name": [r["label"] for r in records], "metric": metrics})
