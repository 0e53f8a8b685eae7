"""Average ranks by ``np.argsort`` and tie counts: rsaflow.ranking's path for short vectors (where
numpy's SIMD argsort beats the packed keys), non-finite ones and more than 2^31 values, and
:func:`tied_pairs`. Tie runs are runs of equal values under ``!=`` (``scipy.stats.rankdata``'s
``==``); a run of sorted positions a..b-1 gets the average rank (a + b + 1) / 2, exact in float64,
so the ranks equal ``rankdata(method='average')`` bit for bit. Never imports torch.
"""

from __future__ import annotations

import numpy as np

#: Sorted positions at a time in the chunked path and :func:`tied_pairs` (their temporaries).
RANK_CHUNK = 1 << 19
#: Up to this many values the ranks are made in one pass over whole arrays (:func:`_rank_whole`).
WHOLE_MAX = 1 << 20


def _sorted_runs(get, n: int, chunk: int | None = None):
    """Tie runs of a sorted sequence of ``n`` values, a chunk of sorted positions at a time.

    ``get(a, b)`` returns the sorted values at positions a..b-1. Yields int64 arrays of run
    boundaries ``[b0, b1, ..., bk]`` (runs ``[b_i, b_i+1)`` of equal values under ``!=``, every run
    complete: a run that goes on past a chunk's end is followed to its end, in growing windows).
    Successive arrays tile 0..n. Temporaries: a few arrays of ``chunk`` (default
    :data:`RANK_CHUNK`) elements.
    """
    chunk = RANK_CHUNK if chunk is None else chunk
    lo = 0
    while lo < n:
        hi = min(lo + chunk, n)
        sv = get(lo, hi)
        cut = np.flatnonzero(sv[1:] != sv[:-1])
        cut += lo + 1
        end = hi
        last, width = sv[-1], 64
        del sv
        while end < n:  # the last run may go on past hi
            nxt = get(end, min(end + width, n))
            k = np.flatnonzero(nxt != last)
            if k.size:
                end += int(k[0])
                break
            end += nxt.size
            width = min(2 * width, chunk)
        yield np.concatenate((np.array([lo], dtype=np.int64), cut.astype(np.int64, copy=False),
                              np.array([end], dtype=np.int64)))
        lo = end


def _pairs(lengths: np.ndarray) -> int:
    lengths = lengths.astype(np.int64, copy=False)
    return int((lengths * (lengths - 1) // 2).sum())


def ranks_by_argsort(values: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """``(ranks, tied_pairs)`` as rsaflow.ranking.ranks_and_ties, by np.argsort (each NaN a group of
    its own; ``out``: memory for the ranks): up to :data:`WHOLE_MAX` values in one pass (:func:`_rank_whole`), longer ones
    a chunk of sorted positions at a time (:data:`RANK_CHUNK`), each tie run given its average rank as
    it is found: the int64 order and the ranks, 16 B per value beside the values, plus chunk arrays."""
    values = np.asarray(values).ravel()
    n = values.size
    order = np.argsort(values, kind="quicksort")
    ranks = np.empty(n, dtype=np.float64) if out is None else out
    if n <= WHOLE_MAX:
        return ranks, _rank_whole(values, order, ranks)
    ties = 0
    for bounds in _sorted_runs(lambda a, b: values[order[a:b]], n):
        lengths = np.diff(bounds)
        ties += _pairs(lengths)
        lo, last, end = int(bounds[0]), int(bounds[-2]), int(bounds[-1])
        # runs before the last: at most one chunk of positions
        ranks[order[lo:last]] = np.repeat((bounds[:-2] + bounds[1:-1] + 1) / 2.0, lengths[:-1])
        rank = (bounds[-2:-1] + bounds[-1:] + 1) / 2.0  # the last run (any length), in slices
        for a in range(last, end, RANK_CHUNK):
            ranks[order[a : min(a + RANK_CHUNK, end)]] = rank
    return ranks, ties


def _rank_whole(values: np.ndarray, order: np.ndarray, ranks: np.ndarray) -> int:
    """Write the average ranks of ``values`` (sorted by ``order``) into ``ranks`` in one pass over
    whole arrays (about 32 B per value of temporaries, 32 MiB at most; 1.7x faster than chunks at
    N = 1,000); returns the number of tied pairs. Runs of equal values under ``!=``, as :func:`_sorted_runs`."""
    n = values.size
    ordered = np.take(values, order)
    starts = np.flatnonzero(ordered[1:] != ordered[:-1])
    del ordered
    if starts.size == n - 1:  # no ties: sorted position p has rank p + 1
        ranks[order] = np.arange(1.0, n + 1.0)
        return 0
    bounds = np.concatenate(([0], starts + 1, [n])).astype(np.int64, copy=False)
    lengths = np.diff(bounds)
    ranks[order] = np.repeat((bounds[:-1] + bounds[1:] + 1) / 2.0, lengths)
    return _pairs(lengths)


def tied_pairs(values: np.ndarray) -> int:
    """Number of pairs of entries of ``values`` with equal values: sum over tie groups of c (c-1)/2.

    NaNs count as one group (as ``np.unique``). Memory: one sorted copy of the values plus a few
    arrays of :data:`RANK_CHUNK` elements.
    """
    ordered = np.sort(np.asarray(values).ravel())
    n = ordered.size
    nans = 0
    if ordered.dtype.kind == "f" and n and np.isnan(ordered[-1]):  # NaNs sort last; one group, as np.unique
        n = int(np.searchsorted(ordered, np.nan))
        nans = _pairs(np.array([ordered.size - n]))
    return nans + sum(_pairs(np.diff(b)) for b in _sorted_runs(lambda a, b: ordered[a:b], n))
