"""Exact sorting and average ranks of long float vectors (RDM upper triangles), fast and lean.

``np.argsort`` of float64 runs scalar code (6.4 s for 50 million values on an AVX2 CPU),
where ``np.sort`` of the same number of 64-bit integers runs numpy's SIMD quicksort (about
0.8 s). So every value is packed with its index into one uint64 key and the keys are sorted:

    key = coarse(v) << B | index,   B = bit length of n - 1 (26 bits for n = 49,995,000),
    coarse(v) = min(floor((v - min) * 2^C / (max - min)), 2^C - 1),   C = min(64 - B, 52).

coarse is non-decreasing in v (each float operation rounds monotonically) and equal values get
equal codes (-0.0 and 0.0 too), so the sorted keys order the values exactly except inside
*collision runs*: equal codes of different values (values closer than (max - min) / 2^C).
Such a run is sorted again in place by the same recipe over its own min..max, recursively
(small runs by ``np.argsort`` of their values); no approximation survives. The result of
:func:`argsort` is therefore an exact sort order; ties come in no particular order.

:func:`ranks_and_ties` walks the sorted keys; a tie run (equal values under ``==``, as
``scipy.stats.rankdata`` compares) of sorted positions a..b-1 gets the average rank
(a + b + 1) / 2, which is written into the key as ``index << R | (a + b + 1)`` (R = bit length
of 2 n); one more integer sort puts the keys in index order, and the rank is the low field
times 0.5 (exact in float64). Values are only read at the positions where two neighbouring
codes are equal, so the only random accesses are in collision and tie runs.

Memory beside the values: the keys, 8 B per value (the returned ranks are their memory, or the
caller's ``out``), and a few :data:`CHUNK` arrays: 2 S for values and ranks where an argsort-based
ranking holds 3 S. NaN/Inf, fewer than :data:`PACKED_MIN` or over 2^31 values take the
``np.argsort`` path. Both match ``scipy.stats.rankdata(method='average')`` bit for bit;
rsaflow.argsort_ranking.tied_pairs counts tied pairs alone (one sort). Never imports torch.
"""

from __future__ import annotations

import numpy as np

from rsaflow.argsort_ranking import ranks_by_argsort

#: Positions handled at a time by the passes over the keys (temporaries: a few such arrays).
CHUNK = 1 << 19
#: The packed keys need at least this many values (their index field and chunked passes).
SMALL = 1 << 14
#: Below this length :func:`argsort` and :func:`ranks_and_ties` use ``np.argsort`` directly: where
#: numpy's argsort of float64 is SIMD (AVX-512, numpy >= 2), it beats the packed keys up to about a
#: million values (N ~ 1,400; one-pass path, AVX-512: N = 1,000 22 vs 36 ms on distances, 11 vs 37 ms
#: on heavy ties; N = 2,000 114 vs 59 ms on distances). Same ranks bit for bit either way.
PACKED_MIN = 1 << 20
#: Collision runs shorter than this are sorted by ``np.argsort`` of their values, longer ones
#: by re-keying in place.
_SMALL_RUN = 1 << 12
#: At most this many distinct codes: the collision check reads the values in input order.
_TABLE = 1 << 16
_MAX_N = 1 << 31
#: From this many keys the two big sorts run in the caller's threads (:func:`_sort`).
PARALLEL_MIN = 1 << 22


def _bits(n: int) -> int:
    return max(1, int(n - 1).bit_length())


def _fast_path(values: np.ndarray) -> tuple[float, float] | None:
    """(min, max) of values that can be packed (1-D, finite, SMALL..2^31 values), None for the
    np.argsort path."""
    if values.ndim != 1 or values.size < max(SMALL, PACKED_MIN) or values.size > _MAX_N or \
            values.dtype.kind not in "fiub":
        return None
    lo, hi = float(values.min()), float(values.max())
    if not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(hi - lo)):
        return None  # NaN, Inf, or a range that overflows
    return lo, hi


def _coder(lo: float, hi: float, b: int):
    """The code function of values over lo..hi for B = b index bits (module docstring): float64
    array -> uint64 codes, non-decreasing in the value, equal for equal values."""
    c = min(64 - b, 52)
    top = float(2**c - 1)
    pre = 2.0**600 if 0 < hi - lo < 2.0**-500 else 1.0  # a subnormal range: scale in two steps
    scale = 2.0**c / ((hi - lo) * pre) if hi > lo else 0.0

    def codes(v: np.ndarray) -> np.ndarray:
        x = np.array(v, dtype=np.float64)  # a copy
        x -= lo
        if pre != 1.0:
            x *= pre
        x *= scale  # each step rounds monotonically; at most 2^c (1 + 2^-52), clipped to top below
        np.floor(x, out=x)
        np.minimum(x, top, out=x)
        return x.astype(np.uint64)

    return codes


def map_threads(fn, items, threads: int = 1) -> list:
    """``[fn(x) for x in items]``, ``threads`` items at a time when threads > 1 (NumPy's sorts and
    loops release the GIL; items must write disjoint memory). The first exception in item order is
    raised, as in the loop. rsaflow's one thread pool for array work (ranking, unit vectors, scalars)."""
    items = list(items)
    if threads < 2 or len(items) < 2:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(threads, len(items))) as pool:
        return list(pool.map(fn, items))


def _per_chunk(fn, n: int, threads: int = 1) -> None:
    """``fn(s)`` for each chunk start s in 0..n (step :data:`CHUNK`), ``threads`` chunks at a time
    from :data:`PARALLEL_MIN` values (chunks write disjoint slices)."""
    map_threads(fn, range(0, n, CHUNK), threads if n >= PARALLEL_MIN else 1)


def _encode(keys: np.ndarray, values: np.ndarray, codes, b: int, gather: bool, threads: int = 1) -> None:
    """Write ``codes(v) << b | index`` into ``keys``. gather: keys already hold indices (low b
    bits) into ``values``; else index = position."""
    mask = np.uint64((1 << b) - 1)

    def chunk(s: int) -> None:
        k = keys[s : s + CHUNK]
        idx = k & mask if gather else np.arange(s, s + k.size, dtype=np.uint64)
        k[...] = codes(values[idx] if gather else values[s : s + k.size])
        k <<= np.uint64(b)
        k |= idx

    _per_chunk(chunk, keys.size, threads)


def _unique(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique, without its hash table)."""
    x = np.sort(x)
    return x[np.r_[True, x[1:] != x[:-1]]] if x.size else x


def _few_codes(keys: np.ndarray, b: int) -> np.ndarray | None:
    """The distinct codes of sorted ``keys`` if there are at most :data:`_TABLE`, else None."""
    found, count = [], 0
    for s in range(0, keys.size, CHUNK):
        c = keys[s : s + CHUNK] >> np.uint64(b)
        c = c[np.r_[True, c[1:] != c[:-1]]]
        found.append(c)
        count += c.size
        if count > 2 * _TABLE:
            return None
    codes = _unique(np.concatenate(found))
    return codes if codes.size <= _TABLE else None


def _mixed_codes(keys: np.ndarray, values: np.ndarray, b: int, codes) -> list:
    """Codes of sorted ``keys`` shared by different values. With ``codes`` (the code function,
    top level only) and few distinct codes: each value against one value of its code's run, read
    in input order; else the values at neighbouring equal codes (random reads, but tie runs hold
    ascending indices)."""
    mask = np.uint64((1 << b) - 1)
    table = _few_codes(keys, b) if codes is not None else None
    if table is not None:
        rep = values[keys[np.searchsorted(keys, table << np.uint64(b))] & mask]
        return [_unique(c[values[s : s + c.size] != rep[np.searchsorted(table, c)]])
                for s in range(0, values.size, CHUNK) for c in [codes(values[s : s + CHUNK])]]
    out = []
    for s in range(0, keys.size - 1, CHUNK):
        k = keys[s : s + CHUNK + 1]
        c = k >> np.uint64(b)
        j = np.flatnonzero(c[1:] == c[:-1])
        if j.size > k.size // 8:
            v = values[k & mask]
            out.append(c[j[v[j] != v[j + 1]]])
        elif j.size:
            out.append(c[j[values[k[j] & mask] != values[k[j + 1] & mask]]])
    return out


def _collision_runs(keys: np.ndarray, values: np.ndarray, b: int, codes=None) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the runs of equal codes in sorted ``keys`` that hold different values."""
    found = _mixed_codes(keys, values, b, codes)
    if not found:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    mask = np.uint64((1 << b) - 1)
    mixed = _unique(np.concatenate(found)) << np.uint64(b)
    return np.searchsorted(keys, mixed, "left"), np.searchsorted(keys, mixed | mask, "right")


def _sort_small_runs(keys: np.ndarray, values: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                     mask: np.uint64) -> np.ndarray:
    """Sort each short run keys[starts[i]:ends[i]] by its values (all runs in one lexsort); returns
    the positions inside the runs where the sorted value changes."""
    lengths = ends - starts
    run = np.repeat(np.arange(lengths.size), lengths)
    pos = np.arange(run.size, dtype=np.int64) + np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    seg = keys[pos]
    v = values[seg & mask]
    order = np.lexsort((v, run))
    keys[pos] = seg[order]
    v = v[order]
    return pos[1:][(run[1:] == run[:-1]) & (v[1:] != v[:-1])]


def _sort_exact(keys: np.ndarray, values: np.ndarray, b: int, offset: int = 0, codes=None) -> list:
    """Make sorted ``keys`` (their codes sorted) order their values exactly: re-sort every
    collision run, short ones by their values, long ones re-keyed over their own range.

    Returns arrays of *cuts* (positions + offset) such that afterwards the sorted value at p
    differs from the one at p - 1 exactly when the codes at p and p - 1 differ or p is a cut
    (every code change marks a value change: codes are monotone within each re-keyed run)."""
    starts, ends = _collision_runs(keys, values, b, codes)
    short = ends - starts < _SMALL_RUN
    mask = np.uint64((1 << b) - 1)
    cuts = []
    s, e = starts[short], ends[short]
    batch = np.cumsum(e - s) // CHUNK  # batches of about CHUNK positions: temporaries stay small
    cut = np.flatnonzero(np.diff(batch)) + 1
    for i, j in zip(np.r_[0, cut].tolist(), np.r_[cut, s.size].tolist()):
        cuts.append(_sort_small_runs(keys, values, s[i:j], e[i:j], mask) + offset)
    for a, e in zip(starts[~short].tolist(), ends[~short].tolist()):
        run = keys[a:e]
        v = values[run & mask]
        lo, hi = float(v.min()), float(v.max())
        del v
        _encode(run, values, _coder(lo, hi, b), b, gather=True)
        run.sort()
        cuts.append(np.array([a + offset, e + offset]))  # re-keyed: its first code may equal its neighbour's
        if run[0] >> np.uint64(b) == run[-1] >> np.uint64(b):  # cannot happen (lo -> 0, hi -> top); safe anyway
            run[...] = run[np.argsort(values[run & mask], kind="stable")]
            v = values[run & mask]
            cuts.append(np.flatnonzero(v[1:] != v[:-1]) + (a + offset + 1))
        else:
            cuts += _sort_exact(run, values, b, a + offset)
    return cuts


def _sort(keys: np.ndarray, threads: int) -> None:
    """Sort distinct uint64 keys in place; with threads > 1 (and >= :data:`PARALLEL_MIN` keys),
    np.partition (SIMD, ~0.04 s at 5e7) into ``threads`` parts, each sorted in its own thread (NumPy's
    sort releases the GIL): 1.7x at 5e7 on 2 cores. Distinct keys have one sorted order: same bits."""
    if threads < 2 or keys.size < PARALLEL_MIN:
        keys.sort()
        return
    cuts = [keys.size * i // threads for i in range(threads + 1)]
    keys.partition(cuts[1:-1])
    map_threads(np.ndarray.sort, [keys[a:b] for a, b in zip(cuts[:-1], cuts[1:])], threads)


def _sorted_keys(values: np.ndarray, lo: float, hi: float, out: np.ndarray | None = None,
                 threads: int = 1) -> tuple[np.ndarray, int, np.ndarray]:
    """(sorted keys, B, cuts) of finite 1-D values over lo..hi (see :func:`_sort_exact`); the keys
    in ``out``'s memory when given."""
    b = _bits(values.size)
    keys = np.empty(values.size, dtype=np.uint64) if out is None else out.view(np.uint64)
    codes = _coder(lo, hi, b)
    _encode(keys, values, codes, b, gather=False, threads=threads)
    _sort(keys, threads)
    cuts = _sort_exact(keys, values, b, codes=codes)
    return keys, b, _unique(np.concatenate([np.empty(0, np.int64), *cuts]).astype(np.int64))


def argsort(values: np.ndarray) -> np.ndarray:
    """An int64 order that sorts the 1-D ``values`` exactly (``values[order]`` equals
    ``np.sort(values)``), ties in no particular order, NaN last (as ``np.argsort``)."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"argsort needs a 1-D array, got shape {values.shape}")
    bounds = _fast_path(values)
    if bounds is None:
        return np.argsort(values, kind="quicksort")
    keys, b, _ = _sorted_keys(values, *bounds)
    keys &= np.uint64((1 << b) - 1)
    return keys.view(np.int64)


def _run_starts(keys: np.ndarray, cuts: np.ndarray, s: int, e: int, b: int) -> np.ndarray:
    """Positions p in s+1..e-1 (absolute) where the sorted value differs from position p - 1."""
    c = keys[s:e] >> np.uint64(b)
    change = c[1:] != c[:-1]
    i, j = np.searchsorted(cuts, [s + 1, e])
    change[cuts[i:j] - (s + 1)] = True  # the cuts inside, marked in place (no sort of the union)
    return np.flatnonzero(change) + (s + 1)


def _run_end(keys: np.ndarray, cuts: np.ndarray, start: int, b: int) -> int:
    """End (exclusive) of the tie run that contains sorted position ``start``."""
    n, width = keys.size, 64
    while start + 1 < n:
        cut = _run_starts(keys, cuts, start, min(start + 1 + width, n), b)
        if cut.size:
            return int(cut[0])
        start, width = min(start + width, n - 1), min(2 * width, CHUNK)
    return n


def _rank_keys(keys: np.ndarray, cuts: np.ndarray, b: int, threads: int = 1) -> int:
    """Replace each sorted key by ``index << R | (a + b + 1)`` of its tie run a..b-1; returns the
    number of tied pairs. Segments of about :data:`CHUNK` positions, each ending where a tie run
    ends (found first, on the untouched keys), are then rewritten ``threads`` at a time: each
    reads and writes only its own positions."""
    n = keys.size
    segments, lo = [], 0
    while lo < n:
        hi = min(lo + CHUNK, n)
        end = _run_end(keys, cuts, hi - 1, b) if hi < n else n
        segments.append((lo, hi, end))
        lo = end
    r = np.uint64(_bits(2 * n + 1))
    mask = np.uint64((1 << b) - 1)

    def segment(seg: tuple) -> int:
        lo, hi, end = seg
        starts = _run_starts(keys, cuts, lo, hi, b)
        if end == hi and starts.size == hi - lo - 1:  # no ties: sorted position p has rank p + 1
            k = keys[lo:end]
            k &= mask
            k <<= r
            k |= np.arange(2 * lo + 2, 2 * end + 2, 2, dtype=np.uint64)
            return 0
        bounds = np.concatenate(([lo], starts, [end])).astype(np.int64)
        lengths = np.diff(bounds)
        doubled = (bounds[:-1] + bounds[1:] + 1).astype(np.uint64)
        for a in range(lo, end, CHUNK):  # the last run may be long: in slices
            k = keys[a : min(a + CHUNK, end)]
            first = np.searchsorted(bounds, a, "right") - 1
            last = np.searchsorted(bounds, a + k.size - 1, "right") - 1
            sizes = np.minimum(bounds[first + 1 : last + 2], a + k.size) - np.maximum(bounds[first : last + 1], a)
            k &= mask
            k <<= r
            k |= np.repeat(doubled[first : last + 1], sizes)
        return int((lengths * (lengths - 1) // 2).sum())

    return sum(map_threads(segment, segments, threads if n >= PARALLEL_MIN else 1))


def ranks_and_ties(values: np.ndarray, out: np.ndarray | None = None, threads: int = 1) -> tuple[np.ndarray, int]:
    """``(ranks, tied_pairs)`` of a 1-D array: ranks equal to
    ``scipy.stats.rankdata(values, method='average')`` bit for bit (float64), tied_pairs the
    number of pairs of entries with equal values (sum over tie groups of c (c - 1) / 2; on the
    np.argsort path each NaN is a group of its own; ``tied_pairs`` counts them as one). See the module
    docstring for the method and its memory (2 S with the values). ``out``: a float64 array of the
    values' length (not overlapping them) that receives the ranks, and on the packed path also holds
    the keys: the ranking then allocates no array of the values' size beside it (rsaflow.jobs.rdm
    ranks into memory the RDM's square leaves free). ``threads``: the packed path's two big sorts
    in that many threads (:func:`_sort`; same ranks)."""
    values = np.asarray(values)
    if out is not None and (out.dtype != np.float64 or out.shape != (values.size,) or not out.flags.c_contiguous
                            or not out.flags.writeable):
        raise ValueError(f"out must be a writable contiguous float64 array of {values.size} values, got {out.dtype}")
    bounds = _fast_path(values)
    if bounds is None:
        return ranks_by_argsort(values, out)
    keys, b, cuts = _sorted_keys(values, *bounds, out, threads)
    ties = _rank_keys(keys, cuts, b, threads)
    _sort(keys, threads)
    r = np.uint64((1 << _bits(2 * keys.size + 1)) - 1)
    ranks = keys.view(np.float64)

    def chunk(s: int) -> None:
        doubled = (keys[s : s + CHUNK] & r).astype(np.float64)
        doubled *= 0.5
        ranks[s : s + CHUNK] = doubled

    _per_chunk(chunk, keys.size, threads)
    return ranks, ties
