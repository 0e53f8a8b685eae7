"""Export RDMs in rsatoolbox's HDF5 layout, so ``rsatoolbox.rdm.load_rdm(path)`` opens them.

rsatoolbox (0.3.x, ``RDMs.save`` -> ``rsatoolbox.io.hdf5.write_dict_hdf5``) stores an RDMs object
as its ``to_dict()``; ``load_rdm`` reads it back with ``read_dict_hdf5`` + ``rdms_from_dict``.
The layout written here, without importing rsatoolbox:

===========================================  ==========================================================
``/dissimilarities``                         float64 (K, N (N - 1) / 2): each RDM's upper triangle, row-major
                                             (``squareform`` order, as :func:`rsaflow.rdm.upper_triangle`)
``/`` attr                                   ``dissimilarity_measure``: the measure shared by all K RDMs
                                             (see :data:`MEASURE_NAMES`), or :data:`MIXED` when they differ
``/descriptors``                             group; its string attributes become ``RDMs.descriptors``
``/rdm_descriptors/model``                   fixed-length ASCII strings (K,): the part of each name before
                                             the first '/'
``/rdm_descriptors/layer``                   (K,): the rest of the name
``/rdm_descriptors/name``                    (K,): the full ``model/layer`` name
``/rdm_descriptors/dissimilarity_measure``   (K,): each RDM's own measure
``/rdm_descriptors/index``                   int64 (K,): 0..K-1
``/pattern_descriptors/stimulus``            fixed-length ASCII strings (N,): the stimulus ids
``/pattern_descriptors/index``               int64 (N,): 0..N-1
===========================================  ==========================================================

Measure names follow rsatoolbox's labels where rsatoolbox computes the same values, and are never
a name that rsatoolbox uses for a different formula (:data:`MEASURE_NAMES`): rsaflow's
``euclidean`` is sqrt(||x_i - x_j||^2 / M), while ``rsatoolbox.rdm.calc_rdm(method='euclidean')``
returns ||x_i - x_j||^2 / M, labelled ``'squared euclidean'``.

Strings are fixed-length bytes because rsatoolbox converts ``np.bytes_`` datasets back with
numpy's ASCII decoding; non-ASCII characters in names and ids are therefore written escaped
(Python's ``backslashreplace``: ``café`` -> ``caf\\xe9``; undo with
``s.encode().decode('unicode_escape')``). The file is written under a temporary name and renamed
into place (:func:`rsaflow.h5io.atomic_h5`), and also carries the attribute
``rsaflow_kind = 'rsatoolbox_rdms'`` (rsatoolbox ignores it, except that ``read_dict_hdf5`` returns
it as one more key).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from rsaflow.finite import check_finite
from rsaflow.h5io import atomic_h5


#: rsaflow RDM metric -> the dissimilarity measure written to the export.
#: ``sqeuclidean`` and ``correlation`` equal ``rsatoolbox.rdm.calc_rdm(method='euclidean')`` (labelled
#: 'squared euclidean') and ``calc_rdm(method='correlation')``; rsatoolbox has no measure for the others,
#: and ``'euclidean'`` is avoided because rsatoolbox computes squared values under that method name.
MEASURE_NAMES = {
    "euclidean": "sqrt of squared euclidean",  # sqrt(||x_i - x_j||^2 / M)
    "sqeuclidean": "squared euclidean",  # ||x_i - x_j||^2 / M
    "correlation": "correlation",  # 1 - Pearson r across units
    "cosine": "cosine distance",  # 1 - cos(x_i, x_j)
    "external": "external (values as given in the file)",
}

#: The set-level measure when the RDMs' measures differ (e.g. model RDMs with external ones).
MIXED = "mixed: see rdm_descriptors['dissimilarity_measure']"


def measure_name(metric: str) -> str:
    """The export's dissimilarity measure for an rsaflow RDM ``metric`` (see :data:`MEASURE_NAMES`)."""
    if metric not in MEASURE_NAMES:
        raise ValueError(f"unknown RDM metric {metric!r}; known: {', '.join(MEASURE_NAMES)}")
    return MEASURE_NAMES[metric]


def _ascii_array(values: Sequence[str]) -> np.ndarray:
    values = [str(v).encode("ascii", errors="backslashreplace") for v in values]
    return np.array(values, dtype="S") if values else np.array([], dtype="S1")


def write_rsatoolbox_h5(path, rdms: np.ndarray, names: Sequence[str], stimulus_ids: Sequence[str],
                        measures: str | Sequence[str], descriptors: Mapping[str, str] | None = None) -> None:
    """Write K RDMs (K, N, N) as an rsatoolbox RDMs HDF5 file (layout in the module docstring).

    ``names``: K strings ``model/layer``; ``stimulus_ids``: N strings; ``measures``: the
    dissimilarity measure of each RDM (K strings, or one for all); ``descriptors``: optional
    string attributes of the whole set.
    """
    rdms = np.asarray(rdms, dtype=np.float64)
    if rdms.ndim != 3 or rdms.shape[1] != rdms.shape[2] or rdms.shape[1] < 2:
        raise ValueError(f"rdms must be (K, N, N) with N >= 2, got shape {rdms.shape}")
    k, n, _ = rdms.shape
    names = [str(s) for s in names]
    if len(names) != k:
        raise ValueError(f"{len(names)} names for {k} RDMs")
    if any("/" not in s for s in names):
        raise ValueError(f"names must be 'model/layer'; got {[s for s in names if '/' not in s][:5]}")
    if len(stimulus_ids) != n:
        raise ValueError(f"{len(stimulus_ids)} stimulus ids for RDMs of {n} stimuli")
    measures = [measures] * k if isinstance(measures, str) else [str(m) for m in measures]
    if len(measures) != k:
        raise ValueError(f"{len(measures)} measures for {k} RDMs")
    check_finite(rdms, "RDM entries")
    models, layers = zip(*(s.split("/", 1) for s in names))
    iu = np.triu_indices(n, k=1)
    with atomic_h5(path, "rsatoolbox_rdms") as f:
        f.attrs["dissimilarity_measure"] = measures[0] if len(set(measures)) == 1 else MIXED
        f.create_dataset("dissimilarities", data=rdms[:, iu[0], iu[1]], track_times=False)
        group = f.create_group("descriptors", track_order=False)
        for key in sorted(descriptors or {}):
            group.attrs[key] = str(descriptors[key])
        rdm_desc = f.create_group("rdm_descriptors")
        for key, values in (("model", models), ("layer", layers), ("name", names), ("dissimilarity_measure", measures)):
            rdm_desc.create_dataset(key, data=_ascii_array(values), track_times=False)
        rdm_desc.create_dataset("index", data=np.arange(k, dtype=np.int64), track_times=False)
        pat = f.create_group("pattern_descriptors")
        pat.create_dataset("stimulus", data=_ascii_array(stimulus_ids), track_times=False)
        pat.create_dataset("index", data=np.arange(n, dtype=np.int64), track_times=False)
