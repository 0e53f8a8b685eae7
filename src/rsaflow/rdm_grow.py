"""The RDM of a grown (or reordered) stimulus set from a stored RDM of the same layer (issue 22 item 2).

Rows are identified by content: the sha256 of each activation row's bytes (:func:`row_digests`, C
order, the dataset's dtype), stored with every RDM product (dataset ``row_sha256``, N x 32 uint8).
For a metric whose d(i, j) depends on rows i and j alone (``row_local`` in the registry,
rsaflow.methods.METRICS), the distance of two rows with known digests is the stored one, whatever
else the set holds. :func:`grow_rdm` copies those (the old N x N block, in the new order) and
computes only the rows no stored RDM holds, against every row: O(N dN M) instead of O(N^2 M).

Exactness, as :mod:`rsaflow.rdm`'s cold path: the new rows' distances come from the same Gram
identities (float64 accumulation over the same column blocks; centred rows with the residual
correction for correlation), pairs under ``NEAR_RTOL`` are recomputed directly from the full rows
(by rsaflow.rdm's own routine), rows with identical bytes get exactly 0, the result is exactly
symmetric with a zero diagonal. Copied entries are the stored float64 values bit for bit; computed
ones agree with a cold RDM of the whole set to float rounding (a few ulps of the Gram products, ~1e-15
of the largest distance; tested against the cold RDM and pdist). Memory: the N x N result + the
stored condensed vector (S_old) + a few dN x N float64 arrays of the new rows.
"""

from __future__ import annotations

import hashlib

import numpy as np

from rsaflow import rdm as rdmmod
from rsaflow.rdm import NEAR_RTOL

#: Reuse a stored RDM only if it holds at least this share of the new set's rows: the new rows cost
#: about 2 dN / N of a cold RDM (a dN x N product against N^2 / 2 for the symmetric one), so below
#: half the set the cold path is as fast.
MIN_SHARE = 0.5


def row_digests(dataset, chunk_bytes: int = 64 * 2**20) -> np.ndarray:
    """sha256 of each row's bytes (C order, stored dtype) of an (N, M) array or h5py dataset: (N, 32) uint8."""
    n, m = dataset.shape
    rows = max(1, chunk_bytes // max(1, m * np.dtype(dataset.dtype).itemsize))
    out = np.empty((n, 32), dtype=np.uint8)
    for start in range(0, n, rows):
        blk = np.ascontiguousarray(dataset[start : start + rows])
        for i in range(blk.shape[0]):
            out[start + i] = np.frombuffer(hashlib.sha256(blk[i]).digest(), dtype=np.uint8)
    return out


def match_rows(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """For each new digest, the position of a row with the same digest among ``old``, or -1."""
    index = {bytes(d): i for i, d in enumerate(old)}
    return np.array([index.get(bytes(d), -1) for d in new], dtype=np.int64)


def _groups(digests: np.ndarray) -> np.ndarray:
    """Integer group per row: rows with the same digest (identical bytes) share one."""
    _, inverse = np.unique(digests, axis=0, return_inverse=True)
    return inverse.ravel()


def _copy_known(d: np.ndarray, condensed: np.ndarray, n_old: int, known: np.ndarray, old_pos: np.ndarray) -> None:
    """d[known, known] = the stored RDM's entries of their old positions (condensed, squareform order).

    One old row at a time: its part right of the diagonal is a contiguous slice of ``condensed``,
    its part left of it one gather (index n_old b - b (b + 1) / 2 + a - b - 1 for b < a); then the
    row, in the new order, is one more gather. O(K n_old) reads, O(n_old) temporaries.
    """
    b = np.arange(n_old, dtype=np.int64)
    base = n_old * b - b * (b + 1) // 2 - b - 1  # + a: the index of (b, a), b < a
    cols = old_pos[known]
    row = np.zeros(n_old)
    for k, a in zip(known.tolist(), cols.tolist()):
        start = int(base[a]) + a + 1 if a < n_old - 1 else 0  # index of (a, a + 1)
        row[:a] = condensed[base[:a] + a]
        row[a] = 0.0
        row[a + 1 :] = condensed[start : start + n_old - a - 1]
        d[k, known] = row[cols]


class _Pairs:
    """Receives rsaflow.rdm.recompute_near's ``d[a, b] = exact`` writes (the first of each pair)."""

    def __init__(self):
        self.parts = []
        self._skip = False

    def __setitem__(self, index, values):
        if not self._skip:
            self.parts.append((index[0].copy(), index[1].copy(), np.array(values, copy=True)))
        self._skip = not self._skip  # every chunk writes (a, b) then (b, a)


def _cross(dataset, metric: str, block: int, new: np.ndarray):
    """Raw distances (squared Euclidean not divided by M, or 1 - cos) of rows ``new`` to every row,
    as the cold path forms them; returns (values dN x N, near mask, M)."""
    info = rdmmod.metric_info(metric)
    n, m_total = dataset.shape
    means = None
    if info.centred:
        sums, constant, m = rdmmod.row_stats(rdmmod.column_blocks(dataset, block), n)
        if np.any(constant):
            raise rdmmod.bad_rows_error(np.nonzero(constant)[0], metric)
        means = sums / m
    cross = np.zeros((new.size, n))
    diag = np.zeros(n)
    resid = np.zeros(n) if means is not None else None
    zero = np.ones(n, dtype=bool)
    m = 0
    for blk in rdmmod.column_blocks(dataset, block):
        b64 = rdmmod.checked_block(blk)
        m += b64.shape[1]
        zero &= ~np.any(b64, axis=1)
        if means is not None:
            b64 -= means[:, None]
            resid += b64.sum(axis=1)
        diag += np.einsum("ij,ij->i", b64, b64)
        cross += b64[new] @ b64.T
        del b64
    if info.angular and not info.centred and np.any(zero):
        raise rdmmod.bad_rows_error(np.nonzero(zero)[0], metric)
    if resid is not None:
        cross -= resid[new, None] * (resid / m)[None, :]
        diag -= resid * resid / m
    if info.angular:
        if np.any(diag <= 0):
            raise rdmmod.bad_rows_error(np.nonzero(diag <= 0)[0], metric)
        inv = 1.0 / np.sqrt(diag)
        cross *= inv[new, None]
        cross *= inv[None, :]
        np.subtract(1.0, cross, out=cross)
        np.clip(cross, 0.0, 2.0, out=cross)
        near = cross <= NEAR_RTOL
    else:
        norm_sum = diag[new, None] + diag[None, :]
        cross *= -2.0
        cross += norm_sum
        np.maximum(cross, 0.0, out=cross)
        near = cross <= NEAR_RTOL * norm_sum
    return cross, near, m


def grow_rdm(dataset, metric: str, block: int, digests: np.ndarray, old_condensed, old_digests: np.ndarray,
             old_pos: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
    """The (N, N) RDM of ``dataset`` (an (N, M) array or h5py dataset) under ``metric``, reusing the
    stored RDM whose condensed values (float64, squareform order; an array or h5py dataset) and row
    digests are ``old_condensed`` and ``old_digests``. ``digests``: :func:`row_digests` of ``dataset``.

    Returns (rdm, near pairs recomputed directly, rows reused). ValueError for a metric that is not
    row-local, or as :func:`rsaflow.rdm.compute_rdm` for bad rows.
    """
    info = rdmmod.metric_info(metric)
    if not info.row_local:
        raise ValueError(f"metric {metric!r} is not row-local: its RDM cannot reuse stored rows")
    n, _ = dataset.shape
    if old_pos is None:
        old_pos = match_rows(digests, old_digests)
    known = np.nonzero(old_pos >= 0)[0]
    new = np.nonzero(old_pos < 0)[0]
    d = np.zeros((n, n))
    if known.size:
        _copy_known(d, np.asarray(old_condensed[()], dtype=np.float64), old_digests.shape[0], known, old_pos)
    n_near = 0
    if new.size:
        cross, near, m = _cross(dataset, metric, block, new)
        groups = _groups(digests)
        same = groups[new, None] == groups[None, :]
        cross[same] = 0.0
        near &= ~same
        li, jj = np.nonzero(near)
        if li.size:
            sink = _Pairs()
            rdmmod.recompute_near(sink, new[li], jj, lambda idx: dataset[np.sort(idx), :], m, metric)
            lookup = {}
            for a, b, v in sink.parts:
                lookup.update(zip(zip(a.tolist(), b.tolist()), v.tolist()))
            cross[li, jj] = [lookup[(a, b)] for a, b in zip(new[li].tolist(), jj.tolist())]
            n_near = int(li.size)
        if not info.angular:
            cross /= m
            if not info.squared:
                np.sqrt(cross, out=cross)
        d[new, :] = cross
        d[:, new] = cross.T
        sub = np.triu(cross[:, new], 1)  # new x new: one value per pair, exactly symmetric
        d[np.ix_(new, new)] = sub + sub.T
    np.fill_diagonal(d, 0.0)
    return d, n_near, int(known.size)
