"""rsaflow.ranking: exact sort order, average ranks and tie counts against scipy and numpy.

The references are independent computations: ``scipy.stats.rankdata(method='average')`` for the
ranks (compared bit for bit: both compute (a + b + 1) / 2 from integer positions, exact in
float64), ``np.unique`` counts for the tie count and ``np.sort`` for the order.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from rsaflow import argsort_ranking, compare, ranking, resampling


@pytest.fixture(autouse=True)
def packed_from_small(monkeypatch):
    """The packed-key path from its own minimum length (SMALL), so that these tests exercise it on
    small vectors; the default dispatch (PACKED_MIN) is tested below."""
    monkeypatch.setattr(ranking, "PACKED_MIN", ranking.SMALL)


def test_short_vectors_take_the_argsort_path_by_default(monkeypatch):
    monkeypatch.setattr(ranking, "PACKED_MIN", 1 << 20)
    v = np.random.default_rng(0).random(1 << 19)
    assert ranking._fast_path(v) is None and ranking._fast_path(np.r_[v, v]) is not None
    np.testing.assert_array_equal(ranking.ranks_and_ties(v)[0], rankdata(v))


def _check(v: np.ndarray) -> None:
    ranks, ties = ranking.ranks_and_ties(v)
    assert ranks.dtype == np.float64 and ranks.shape == v.shape
    np.testing.assert_array_equal(ranks, rankdata(v, method="average"))
    _, counts = np.unique(v, return_counts=True)
    assert ties == int((counts * (counts - 1) // 2).sum())
    order = ranking.argsort(v)
    assert order.dtype == np.int64
    np.testing.assert_array_equal(v[order], np.sort(v))
    np.testing.assert_array_equal(np.sort(order), np.arange(v.size))


def _cases(n: int, rng) -> dict:
    near = 1 + rng.integers(0, 3, n) * 2.0**-45  # three values closer than the code resolution
    near[:2] = 0.0, 1e6
    signed = rng.random(n)
    signed[::3], signed[1::3] = 0.0, -0.0  # -0.0 ties with 0.0, as in rankdata
    dups = rng.random(n)
    dups[: n // 2] = dups[n // 2 : 2 * (n // 2)]
    return {
        "continuous": rng.random(n),
        "heavy ties": rng.integers(0, 5, n).astype(float),
        "signed zeros": signed,
        "duplicates": dups,
        "constant": np.full(n, 3.5),
        "one outlier": np.r_[rng.random(n - 1), 1e12],
        "mixed collision run": near,
        "many collision runs": np.r_[rng.random(n // 2), 1 + rng.integers(0, 3000, n - n // 2) * 2.0**-45],
        "zeros and tiny": np.r_[np.zeros(n // 2), 1e-300 * rng.random(n - n // 2 - 1), [1.0]],
        "geometric": 2.0 ** -rng.integers(0, 1000, n).astype(float),
        "subnormal range": rng.integers(0, 3, n) * 2.0**-1070,
        "negative": -rng.random(n) * 1e3,
        "float32": rng.random(n).astype(np.float32),
        "integers": rng.integers(-50, 50, n),
    }


@pytest.mark.parametrize("case", list(_cases(8, np.random.default_rng(0))))
def test_ranks_ties_and_order_equal_references(case):
    rng = np.random.default_rng(1)
    _check(_cases(3 * ranking.SMALL + 7, rng)[case])


@pytest.mark.parametrize("n", [ranking.SMALL, ranking.SMALL + 1, ranking.CHUNK - 1, ranking.CHUNK, ranking.CHUNK + 1,
                               2 * ranking.CHUNK + 3])
def test_sizes_around_chunk_and_packing_limits(n):
    """Around the chunk size (runs cut by a chunk end) and SMALL; the index field is
    bit_length(n - 1) bits wide, so these also change the packing (2^19 - 1 -> 19 bits, 2^19 + 1 -> 20)."""
    rng = np.random.default_rng(n)
    _check(rng.integers(0, n // 3, n) * 0.125)  # ties everywhere, runs crossing chunk ends
    _check(rng.random(n))
    v = np.zeros(n)
    v[-1] = 1.0  # one tie run across every chunk
    _check(v)


@pytest.mark.parametrize("small_run", [2, 1 << 12])
def test_collision_runs_both_paths(monkeypatch, small_run):
    """Collision runs sorted by np.lexsort (short) and by re-keying in place (long)."""
    monkeypatch.setattr(ranking, "_SMALL_RUN", small_run)
    rng = np.random.default_rng(2)
    for v in _cases(50_000, rng).values():
        _check(v)


def test_code_table_path_off(monkeypatch):
    """The collision check by neighbouring values (used when the codes are many) on heavy ties."""
    monkeypatch.setattr(ranking, "_TABLE", 0)
    rng = np.random.default_rng(3)
    _check(rng.integers(0, 5, 40_000).astype(float))
    _check(_cases(40_000, rng)["mixed collision run"])


def test_non_finite_and_short_inputs_take_the_argsort_path():
    rng = np.random.default_rng(4)
    v = rng.random(ranking.SMALL)
    v[[3, 9]] = np.nan
    assert ranking._fast_path(v) is None and ranking._fast_path(v[:100]) is None  # the np.argsort path
    ranks, ties = compare.ranks_and_ties(v)  # each NaN a group of its own, ranked last
    assert ties == 0 and set(ranks[[3, 9]]) == {v.size - 1.0, float(v.size)}
    np.testing.assert_array_equal(ranking.argsort(v), np.argsort(v))
    w = rng.random(ranking.SMALL)
    w[0] = np.inf
    _check(w)
    _check(rng.integers(0, 4, 300).astype(float))


@pytest.mark.parametrize("whole", [True, False], ids=["one pass", "chunked"])
def test_argsort_path_in_one_pass_and_in_chunks(monkeypatch, whole):
    """The np.argsort path ranks up to PACKED_MIN values in one pass and longer ones a chunk at a time
    (RANK_CHUNK made small here, so that tie runs cross chunk ends); both equal rankdata bit for bit."""
    monkeypatch.setattr(argsort_ranking, "WHOLE_MAX", 1 << 30 if whole else 0)
    monkeypatch.setattr(argsort_ranking, "RANK_CHUNK", 1000)
    rng = np.random.default_rng(6)
    for name, v in _cases(5_003, rng).items():
        ranks, ties = argsort_ranking.ranks_by_argsort(v)
        np.testing.assert_array_equal(ranks, rankdata(v), err_msg=name)
        _, counts = np.unique(v, return_counts=True)
        assert ties == int((counts * (counts - 1) // 2).sum()), name


@pytest.mark.parametrize("threads", [2, 3])
def test_sorts_in_threads_give_the_same_ranks(monkeypatch, threads):
    """The packed path's big sorts split by np.partition over threads, and its rank segments (cut at
    tie-run ends; CHUNK made small so that runs cross them) rewritten in threads: same ranks."""
    monkeypatch.setattr(ranking, "PARALLEL_MIN", ranking.SMALL)
    monkeypatch.setattr(ranking, "CHUNK", 4096)
    rng = np.random.default_rng(8)
    for name, v in _cases(70_001, rng).items():
        ranks, ties = ranking.ranks_and_ties(v, threads=threads)
        np.testing.assert_array_equal(ranks, rankdata(v), err_msg=name)
        assert ties == compare.tied_pairs(v), name


def test_call_sites_use_the_fast_ranking():
    """compare.ranks_and_ties / average_ranks and the resamples' weighted ranks agree with rankdata."""
    rng = np.random.default_rng(5)
    v = np.round(rng.random(ranking.SMALL * 2), 3)
    ranks, ties = compare.ranks_and_ties(v)
    np.testing.assert_array_equal(ranks, rankdata(v))
    np.testing.assert_array_equal(compare.average_ranks(v), rankdata(v))
    w = rng.integers(1, 4, v.size).astype(float)
    total = float(w.sum())
    got = resampling.rank_vector(v, w, total, "rho_a")
    expanded = np.repeat(v, w.astype(int))  # the weighted ranks are the ranks of the expanded vector
    r = rankdata(expanded) - (total + 1) / 2
    first = np.cumsum(w.astype(int)) - w.astype(int)
    # 1e-12: the reference scales after averaging, ours in another order (a few ulps of values ~1)
    np.testing.assert_allclose(got, r[first] * np.sqrt(w) * np.sqrt(12.0 / (total**3 - total)), rtol=0, atol=1e-12)
