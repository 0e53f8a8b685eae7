"""The RDM file: one RDM in at most 2 S bytes (S = 8 P, P = N (N - 1) / 2), and its one reader.

Layout (an rsaflow HDF5 artifact of kind ``rdm``, see rsaflow.h5io)::

    condensed   (P,) float64   the upper triangle d(i, j), i < j, row-major: the order of
                               scipy.spatial.distance.squareform and upper_triangle below
    ranks       (P,) float64   its average ranks 1..P, ties at their mean rank
                               (scipy.stats.rankdata(condensed, method='average'), exactly)

Attributes, besides provenance: ``n_stimuli``; ``tied_pairs`` (pairs of equal dissimilarities,
rsaflow.compare.tied_pairs, for kendall_tau_a); and for each vector method of rsaflow.compare
``centre_<method>`` and ``norm_<method>`` (``scale_rho_a`` for rho_a), so that the vector the
comparison needs is derived from any slice of pairs by elementwise float64 arithmetic:

    spearman  (ranks[s] - centre) / norm        pearson  (condensed[s] - centre) / norm
    cosine    condensed[s] / norm               rho_a    (ranks[s] - centre) * scale
    kendall_tau_a  condensed[s] (raw values)

bit for bit what rsaflow.compare.per_rdm_vector returns for the whole vector (:func:`vector_chunk`).
The square N x N matrix is one call away: ``rsaflow.results.read_rdm(path, square=True)["rdm"]``; every reader
of RDM files in rsaflow goes through :func:`rsaflow.results.read_rdm` or :func:`vector_chunk`. Torch-free.
"""

from __future__ import annotations

import numpy as np

from rsaflow import h5io, ranking
from rsaflow.compare import (
    RAW_METHODS,
    VECTOR_METHODS,
    centre_norm,
    n_from_pairs,
    ranks_and_ties,
    rho_a_scale,
    tied_pairs,
)
from rsaflow.methods import METHODS


def upper_triangle(square: np.ndarray) -> np.ndarray:
    """The upper triangle (k=1) of a square RDM, row-major: square[0,1], square[0,2], ...,
    square[N-2,N-1] (the order of ``scipy.spatial.distance.squareform`` and the tutorial's boolean
    mask), copied row by row. rsaflow's one implementation (``rsaflow.rdm.upper_triangle`` is this).

    The same values and dtype as ``square[np.triu_indices(N, k=1)]``, without its two int64 index
    arrays (2 S) and without the copy of the square that ``scipy.spatial.distance.squareform``
    makes of a view: the memory is the result's.
    """
    square = np.asarray(square)
    if square.ndim != 2 or square.shape[0] != square.shape[1]:
        raise ValueError(f"an RDM must be square, got shape {square.shape}")
    n = square.shape[0]
    out = np.empty(n * (n - 1) // 2, dtype=square.dtype)
    start = 0
    for i in range(n - 1):
        out[start : start + n - 1 - i] = square[i, i + 1 :]
        start += n - 1 - i
    return out


def upper_triangle_in_place(square: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`upper_triangle` of a C-contiguous, writable float64 square, written over the
    square's own memory (which it destroys): returns ``(condensed, spare)``, both views of that
    memory, ``condensed`` its first P = N (N - 1) / 2 values and ``spare`` the next P, free for the
    ranks (:func:`write`'s ``ranks_out``). So the RDM job's file is made with no array beside the
    square: row i's values move down to their condensed offset, never past a row not yet moved.
    Other squares (views, other dtypes) are copied as :func:`upper_triangle` and ``spare`` is None.
    """
    square = np.asarray(square)
    n = square.shape[0] if square.ndim == 2 else 0
    p = n * (n - 1) // 2
    if not (square.ndim == 2 and square.shape == (n, n) and square.dtype == np.float64 and
            square.flags.c_contiguous and square.flags.writeable) or n < 2:
        return upper_triangle(square), None
    flat = square.reshape(-1)
    start = 0
    for i in range(n - 1):
        length = n - 1 - i
        src = i * n + i + 1
        if src != start:  # dst < src: a forward move; NumPy buffers an overlapping copy
            flat[start : start + length] = flat[src : src + length]
        start += length
    return flat[:p], flat[p : 2 * p]


def method_attrs(condensed: np.ndarray, ranks: np.ndarray, ties: int | None = None, threads: int = 1) -> dict:
    """The per-method scalars stored as attributes (see the module docstring).

    ``ties``: :func:`rsaflow.compare.tied_pairs` of ``condensed`` when the caller has it (from
    :func:`rsaflow.compare.ranks_and_ties`). Raises rsaflow.compare.DegenerateRDMError for an RDM
    some method cannot compare (constant): the first such method in registry order. ``threads``:
    methods computed at once (each a few passes over its values, the GIL released).
    """

    def scalars(method: str) -> dict:  # one vector method's scalars (rsaflow.methods.Method), from its values
        info = METHODS[method]
        values = ranks if info.ranked else condensed
        if info.unit:
            return dict(zip((f"centre_{method}", f"norm_{method}"), centre_norm(values, info.centred)))
        return {f"centre_{method}": float(values.mean()) if info.centred else 0.0,
                f"scale_{method}": rho_a_scale(values.size)}

    out = {"tied_pairs": tied_pairs(condensed) if ties is None else int(ties)}
    parts = ranking.map_threads(scalars, VECTOR_METHODS, threads if condensed.size >= ranking.PARALLEL_MIN else 1)
    for part in parts:
        out.update(part)
    return out


def write(path, condensed: np.ndarray, attrs: dict, extra: dict | None = None, ranker=None,
          ranks_out: np.ndarray | None = None, threads: int = 1) -> None:
    """Write an RDM file from its upper triangle (float64, squareform order) and provenance ``attrs``.

    ``extra``: further datasets (an external group's ``subjects``, rsaflow.jobs.external_rdm).

    Peak memory about 2 S beside the caller's arrays: the values (S, not copied when float64 and
    contiguous) and their ranks (S; rsaflow.ranking sorts packed keys in the ranks' own memory),
    then the per-method scalars' one temporary, a centred copy (S), plus a few chunk arrays.
    ``ranker``: another backend's rsaflow.compare.ranks_and_ties (rsaflow.kernels; bit-identical ranks).
    ``ranks_out``: memory for the ranks (the ``spare`` of :func:`upper_triangle_in_place`), so that
    the NumPy ranking allocates no array of the triangle's size; ``threads``: the ranking's (the rule's).
    """
    condensed = np.ascontiguousarray(condensed, dtype=np.float64)
    ranks, ties = ranker(condensed) if ranker is not None else ranks_and_ties(condensed, out=ranks_out,
                                                                             threads=threads)
    scalars = method_attrs(condensed, ranks, ties, threads)
    h5io.write_h5(path, "rdm", {**(extra or {}), "condensed": condensed, "ranks": ranks},
                  {**attrs, **scalars, "n_stimuli": n_from_pairs(condensed.size)})


def vector_recipe(method: str) -> tuple:
    """``(dataset, centre attribute, scale attribute, divide)`` of ``method``'s vector, from its
    registry entry (rsaflow.methods.Method: ranked, unit; kendall_tau_a: the raw values, no
    attributes): what :func:`read_params` reads from each file. Resolved once per run."""
    if method not in VECTOR_METHODS + RAW_METHODS:
        raise ValueError(f"RDM files hold vectors for {', '.join(VECTOR_METHODS + RAW_METHODS)}, not {method!r}")
    info = METHODS[method]
    dataset = "ranks" if info.ranked else "condensed"
    if info.kind == "raw":
        return dataset, None, None, False
    return dataset, f"centre_{method}", f"{'norm' if info.unit else 'scale'}_{method}", info.unit


def read_params(f, recipe: tuple) -> tuple:
    """``(dataset, centre, scale, divide)`` of a :func:`vector_recipe` from an open RDM file's
    attributes: the vector is ``(f[dataset][s] - centre) / scale`` if divide else
    ``(... - centre) * scale`` (centre None: the raw values). Read once, reused for every chunk."""
    dataset, centre, scale, divide = recipe
    if centre is None:
        return dataset, None, None, False
    return dataset, f.attrs[centre], f.attrs[scale], divide


def vector_params(f, method: str) -> tuple:
    """:func:`read_params` of ``method``'s :func:`vector_recipe` from an open RDM file."""
    return read_params(f, vector_recipe(method))


def vector_chunk(f, method: str, lo: int = 0, hi: int | None = None, params: tuple | None = None,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Pairs ``lo:hi`` of the vector ``method`` compares, from an open RDM file ``f`` (h5py).

    Equal to ``rsaflow.compare.per_rdm_vector(condensed, method)[lo:hi]`` bit for bit: unit
    vectors for spearman, pearson, cosine, the scaled centred ranks for rho_a, the raw values for
    kendall_tau_a. Reads only that slice of one dataset. ``params``: :func:`vector_params` of
    this file and method, when the caller has read them already; ``out``: a contiguous float64
    array of the slice's length to read into and transform in place (no temporaries).
    """
    dataset, centre, scale, divide = vector_params(f, method) if params is None else params
    d = f[dataset]
    hi = d.shape[0] if hi is None else min(hi, d.shape[0])
    if out is None:
        out = np.empty(hi - lo)
    d.read_direct(out, np.s_[lo:hi])
    if centre is not None:
        np.subtract(out, centre, out=out)
        (np.divide if divide else np.multiply)(out, scale, out=out)
    return out
