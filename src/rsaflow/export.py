"""Export RDMs in rsatoolbox's HDF5 layout, so ``rsatoolbox.rdm.load_rdm(path)`` opens them.

rsatoolbox (0.3.x, ``RDMs.save`` -> ``rsatoolbox.io.hdf5.write_dict_hdf5``) stores an RDMs object
as its ``to_dict()``; ``load_rdm`` reads it back with ``read_dict_hdf5`` + ``rdms_from_dict``.
The layout written here, without importing rsatoolbox:

==============================  ==============================================================
``/dissimilarities``            float64 (K, N (N - 1) / 2): each RDM's upper triangle, row-major
                                (``squareform`` order, as :func:`rsaflow.rdm.upper_triangle`)
``/`` attr                      ``dissimilarity_measure``: the RDM metric (string)
``/descriptors``                group; its string attributes become ``RDMs.descriptors``
``/rdm_descriptors/model``      fixed-length ASCII strings (K,): the part of each name before
                                the first '/'
``/rdm_descriptors/layer``      (K,): the rest of the name
``/rdm_descriptors/name``       (K,): the full ``model/layer`` name
``/rdm_descriptors/index``      int64 (K,): 0..K-1
``/pattern_descriptors/stimulus`` fixed-length ASCII strings (N,): the stimulus labels
``/pattern_descriptors/index``  int64 (N,): 0..N-1
==============================  ==============================================================

Strings are fixed-length bytes because rsatoolbox converts ``np.bytes_`` datasets back with
numpy's ASCII decoding; non-ASCII names or labels are therefore refused (ValueError). The file
is written under a temporary name and renamed into place (:func:`rsaflow.h5io.atomic_h5`), and
also carries the attribute ``rsaflow_kind = 'rsatoolbox_rdms'`` (rsatoolbox ignores it, except
that ``read_dict_hdf5`` returns it as one more key).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from rsaflow.h5io import atomic_h5


def _ascii_array(values: Sequence[str], what: str) -> np.ndarray:
    values = [str(v) for v in values]
    bad = [v for v in values if not v.isascii()]
    if bad:
        raise ValueError(f"{what} must be ASCII for rsatoolbox's HDF5 format; not ASCII: {bad[:5]}")
    return np.array(values, dtype="S") if values else np.array([], dtype="S1")


def write_rsatoolbox_h5(path, rdms: np.ndarray, names: Sequence[str], stimulus_labels: Sequence[str], measure: str,
                        descriptors: Mapping[str, str] | None = None) -> None:
    """Write K RDMs (K, N, N) as an rsatoolbox RDMs HDF5 file (layout in the module docstring).

    ``names``: K strings ``model/layer``; ``stimulus_labels``: N strings; ``measure``: the
    dissimilarity measure; ``descriptors``: optional string attributes of the whole set.
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
    if len(stimulus_labels) != n:
        raise ValueError(f"{len(stimulus_labels)} stimulus labels for RDMs of {n} stimuli")
    if not np.all(np.isfinite(rdms)):
        raise ValueError(f"{np.count_nonzero(~np.isfinite(rdms))} RDM entries are NaN or Inf")
    models, layers = zip(*(s.split("/", 1) for s in names))
    iu = np.triu_indices(n, k=1)
    with atomic_h5(path, "rsatoolbox_rdms") as f:
        f.attrs["dissimilarity_measure"] = str(measure)
        f.create_dataset("dissimilarities", data=rdms[:, iu[0], iu[1]], track_times=False)
        group = f.create_group("descriptors", track_order=False)
        for key in sorted(descriptors or {}):
            group.attrs[key] = str(descriptors[key])
        rdm_desc = f.create_group("rdm_descriptors")
        for key, values in (("model", models), ("layer", layers), ("name", names)):
            rdm_desc.create_dataset(key, data=_ascii_array(values, f"RDM {key}s"), track_times=False)
        rdm_desc.create_dataset("index", data=np.arange(k, dtype=np.int64), track_times=False)
        pat = f.create_group("pattern_descriptors")
        pat.create_dataset("stimulus", data=_ascii_array(stimulus_labels, "stimulus labels"), track_times=False)
        pat.create_dataset("index", data=np.arange(n, dtype=np.int64), track_times=False)
