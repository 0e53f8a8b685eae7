"""The rdm job's lean path (triangle copied row by row, square freed, one-sort chunked ranking)
writes the file the previous path wrote, bit for bit, in at most 1.5 x N^2 x 8 B."""

import h5py
import numpy as np
import pytest
from scipy.stats import rankdata

from rsaflow import argsort_ranking, compare, h5io, ranking, rdmfile
from rsaflow.compare import centre_norm, ranks_and_ties, rho_a_scale, tied_pairs
from rsaflow.jobs.per_layer import write_rdm_file
from rsaflow.jobs.rdm import write_rdm
from rsaflow.rdm import compute_rdm

SCALARS = ("tied_pairs", "centre_pearson", "norm_pearson", "centre_cosine", "norm_cosine", "centre_spearman",
           "norm_spearman", "centre_rho_a", "scale_rho_a", "n_stimuli")


def old_average_ranks(values):
    """rsaflow.compare.average_ranks before the chunked ranking (verbatim)."""
    values = np.asarray(values)
    n = values.size
    order = np.argsort(values, kind="quicksort")
    ordered = values[order]
    new = np.empty(n, dtype=bool)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    group_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def old_tied_pairs(values):
    """rsaflow.compare.tied_pairs before (np.unique)."""
    _, counts = np.unique(np.asarray(values), return_counts=True)
    counts = counts.astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def old_file(square):
    """Datasets and scalars the previous write_rdm_file / rdmfile.write stored for ``square``."""
    n = square.shape[0]
    condensed = np.ascontiguousarray(square[np.triu_indices(n, k=1)], dtype=np.float64)
    ranks = old_average_ranks(condensed)
    out = {"tied_pairs": old_tied_pairs(condensed), "n_stimuli": n}
    for method, centred in (("pearson", True), ("cosine", False)):
        out[f"centre_{method}"], out[f"norm_{method}"] = centre_norm(condensed, centred)
    out["centre_spearman"], out["norm_spearman"] = centre_norm(ranks, True)
    out["centre_rho_a"] = float(ranks.mean())
    out["scale_rho_a"] = rho_a_scale(ranks.size)
    return condensed, ranks, out


def tied_activations(n=40, m=6, seed=0):
    """Small integer activations: many tied distances, and three exact duplicate rows (exact zeros)."""
    x = np.random.default_rng(seed).integers(0, 3, size=(n, m)).astype(np.float32)
    x[5] = x[1]
    x[9] = x[1]
    x[0, 0] = 7  # no row is constant (correlation) or all zero (cosine)
    x[:, -1] += np.arange(n) % 2 + 1
    return x


def assert_same_file(path, square):
    condensed, ranks, scalars = old_file(square)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["condensed"][()], condensed, strict=True)
        np.testing.assert_array_equal(f["ranks"][()], ranks, strict=True)
        for key in SCALARS:
            assert f.attrs[key] == scalars[key], key
            assert np.asarray(f.attrs[key]).tobytes() == np.asarray(scalars[key]).tobytes(), key
    np.testing.assert_array_equal(ranks, rankdata(condensed, method="average"))
    assert scalars["tied_pairs"] > 0


@pytest.mark.parametrize("chunk", [5, 64, argsort_ranking.RANK_CHUNK])
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "correlation", "cosine"])
def test_rdm_job_file_equals_previous_path(tmp_path, monkeypatch, metric, chunk):
    """write_rdm (what the rule runs) against the previous triu_indices + np.unique + one-shot ranking
    path on the same square RDM (rsaflow.rdm.compute_rdm); small chunks put tie runs across chunk ends."""
    monkeypatch.setattr(argsort_ranking, "RANK_CHUNK", chunk)
    x = tied_activations()
    act = tmp_path / "a.h5"
    h5io.write_h5(act, "activations", {"activations": x}, {"model": "m", "layer": "l", "stimulus_digest": "d"})
    assert write_rdm(act, tmp_path / "r.h5", {"metric": metric, "block": 4}, "code")
    assert_same_file(tmp_path / "r.h5", compute_rdm(x, metric, block=4))


def test_external_square_equals_previous_path(tmp_path, monkeypatch):
    """write_rdm_file given a square (the external_rdm rule) or its triangle writes the same file."""
    monkeypatch.setattr(argsort_ranking, "RANK_CHUNK", 7)
    square = np.asfortranarray(np.round(compute_rdm(tied_activations(seed=3), "euclidean"), 1))
    for name, rdm in (("sq.h5", square), ("tri.h5", rdmfile.upper_triangle(square)), ("view.h5", square.T.T)):
        write_rdm_file(tmp_path / name, rdm, {"model": "m", "layer": "l"}, "src")
        assert_same_file(tmp_path / name, square)


@pytest.mark.parametrize("n", [2, 3, 4, 7, 64, 301])
def test_upper_triangle_in_place_equals_triu_indices(n):
    """The triangle moved down over the square's own memory equals triu_indices' copy; the spare
    half is the next P values of the same buffer; other squares are copied (spare None)."""
    a = np.random.default_rng(n).random((n, n))
    want = a[np.triu_indices(n, k=1)]
    sq = a.copy()
    condensed, spare = rdmfile.upper_triangle_in_place(sq)
    np.testing.assert_array_equal(condensed, want, strict=True)
    p = n * (n - 1) // 2
    assert np.shares_memory(condensed, sq) and np.shares_memory(spare, sq) and spare.shape == (p,)
    assert not np.shares_memory(condensed, spare)
    for other in (np.asfortranarray(a), a.astype(np.float32), a.T):
        got, none = rdmfile.upper_triangle_in_place(other.copy(order="K"))
        assert none is None
        np.testing.assert_array_equal(got, other[np.triu_indices(n, k=1)], strict=True)


def test_ranks_into_given_memory_equal_rankdata(monkeypatch):
    """ranks_and_ties(values, out=...) writes the ranks (and, packed, its keys) into ``out``: the
    same ranks as without it on both paths; a wrong ``out`` is refused."""
    rng = np.random.default_rng(7)
    v = np.round(rng.random(40_000), 2)
    for packed_min in (ranking.SMALL, 1 << 30):
        monkeypatch.setattr(ranking, "PACKED_MIN", packed_min)
        out = np.empty_like(v)
        ranks, ties = ranks_and_ties(v, out=out)
        assert np.shares_memory(ranks, out)
        np.testing.assert_array_equal(ranks, rankdata(v), strict=True)
        assert ties == tied_pairs(v)
    with pytest.raises(ValueError, match="out must be"):
        ranks_and_ties(v, out=np.empty(v.size, dtype=np.float32))


def test_scalars_in_threads_equal_one_thread(monkeypatch):
    """method_attrs with the methods in threads: the same scalars, and the same first error."""
    monkeypatch.setattr(ranking, "PARALLEL_MIN", 16)
    v = np.round(np.random.default_rng(9).random(5000), 2)
    ranks, ties = ranks_and_ties(v)
    assert rdmfile.method_attrs(v, ranks, ties, threads=2) == rdmfile.method_attrs(v, ranks, ties)
    flat = np.full(5000, 2.0)
    with pytest.raises(compare.DegenerateRDMError, match="zero variance"):
        rdmfile.method_attrs(flat, ranks_and_ties(flat)[0], threads=2)


def test_upper_triangle_equals_triu_indices():
    a = np.random.default_rng(1).random((9, 9)).astype(np.float32)
    for sq in (a, a.T, np.asfortranarray(a), a[:0, :0], a[:1, :1]):
        got = rdmfile.upper_triangle(sq)
        np.testing.assert_array_equal(got, sq[np.triu_indices(sq.shape[0], k=1)], strict=True)
    with pytest.raises(ValueError, match="must be square"):
        rdmfile.upper_triangle(a[:, :3])


@pytest.mark.parametrize("chunk", [1, 2, 3, 10, 1 << 19])
def test_ranks_and_ties_equal_scipy_and_unique(monkeypatch, chunk):
    """Exactly scipy.stats.rankdata(method='average') and the np.unique tie count, runs of every
    length across every chunk boundary (all equal, all distinct, -0.0 beside 0.0, long runs)."""
    monkeypatch.setattr(argsort_ranking, "RANK_CHUNK", chunk)
    rng = np.random.default_rng(chunk)
    cases = [np.zeros(17), np.arange(23.0)[::-1], np.array([0.0, -0.0, 1.0, -0.0, 0.0]), np.array([]),
             np.array([3.0])]
    cases += [rng.integers(0, k, size=n).astype(float) for k in (2, 3, 50) for n in (31, 200)]
    cases += [np.repeat(rng.random(6), rng.integers(1, 40, size=6))]
    for v in cases:
        ranks, ties = ranks_and_ties(v)
        assert ranks.shape == v.shape and ranks.dtype == np.float64
        if v.size:
            np.testing.assert_array_equal(ranks, rankdata(v, method="average"), strict=True)
        assert ties == old_tied_pairs(v) == tied_pairs(v)
        np.testing.assert_array_equal(compare.average_ranks(v), old_average_ranks(v))
    v = np.array([1.0, np.nan, 2.0, np.nan, 1.0])  # tied_pairs: NaNs one group, as np.unique
    assert tied_pairs(v) == old_tied_pairs(v) == 2


def test_rdm_job_peak_memory(tmp_path, monkeypatch):
    """Peak numpy memory of the whole job (RDM, triangle, ranking, scalars, write) <= N^2 x 8 B, the
    square, plus constants (the RDM's 512-row mirror strips, the ranking's chunk arrays, ~20 MB at
    2^19, made small here against this test's small N): the triangle and the ranks (its packed keys)
    live in the square's memory (rsaflow.rdmfile.upper_triangle_in_place). Earlier paths held 1.5 and
    ~5 x N^2 x 8 B."""
    import tracemalloc

    monkeypatch.setattr(argsort_ranking, "RANK_CHUNK", 4096)
    monkeypatch.setattr(ranking, "CHUNK", 4096)  # the packed-key ranking's chunk arrays (rsaflow.ranking)
    monkeypatch.setattr(ranking, "PACKED_MIN", ranking.SMALL)  # N = 2,000: packed either way; small N too
    monkeypatch.setattr(compare, "SUM_CHUNK", 4096)  # the norms' centred chunks
    n, m = 2000, 16  # N^2 x 8 B = 32 MB: a triangle copy (+16 MB) would break the bound
    x = np.random.default_rng(2).random((n, m), dtype=np.float32)
    act = tmp_path / "a.h5"
    h5io.write_h5(act, "activations", {"activations": x}, {"model": "m", "layer": "l", "stimulus_digest": "d"})
    tracemalloc.start()
    write_rdm(act, tmp_path / "r.h5", {"metric": "euclidean", "block": 16}, "code")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak <= n * n * 8 + 6 * 2**20, peak / (n * n * 8)
