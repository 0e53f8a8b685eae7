"""Lean RDM files, the streaming second order and its incremental reuse, against in-memory references."""

import hashlib
import logging
import re

import h5py
import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import kendalltau, rankdata

from rsaflow import h5io, rdmfile, results
from rsaflow.compare import VECTOR_METHODS, aggregate, per_rdm_vector
from rsaflow.measures import centered_gram_unit
from rsaflow.jobs.per_layer import write_rdm_file
from rsaflow.jobs.second_order import write_second_order
from rsaflow.results import read_second_order
from rsaflow.second_order.blocks import similarity_block

N = 24
METHODS_RDM = VECTOR_METHODS + ("kendall_tau_a",)


def activations(k, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(N, 6))
    return [base @ rng.normal(size=(6, 8)) + rng.normal(0, 0.3 * (i + 1), size=(N, 8)) for i in range(k)]


def write_rdms(tmp_path, acts, tie_round=None, names=None):
    paths = []
    for i, x in enumerate(acts):
        rdm = squareform(pdist(x))
        if tie_round is not None:
            rdm = np.round(rdm, tie_round)  # many ties
        name = names[i] if names else f"m{i}"
        path = tmp_path / f"{name}.h5"
        key = hashlib.sha256(rdm.tobytes()).hexdigest()
        write_rdm_file(path, rdm, {"model": name, "layer": "l", "stimulus_digest": "d", "node_index": i,
                                   "content_key": key}, "test")
        paths.append(path)
    return paths


def write_grams(tmp_path, acts):
    paths = []
    for i, x in enumerate(acts):
        path = tmp_path / f"g{i}.h5"
        h5io.write_h5(path, "cka", {"gram_unit": centered_gram_unit(x)},
                      {"model": f"g{i}", "layer": "l", "stimulus_digest": "d", "node_index": i,
                       "content_key": f"gram-{i}"})
        paths.append(path)
    return paths


def test_file_holds_two_vectors_and_reads_back_square(tmp_path):
    x = np.random.default_rng(1).normal(size=(300, 20))
    x[7] = x[3]  # identical patterns: exact zero
    rdm = squareform(pdist(x))
    path = tmp_path / "r.h5"
    write_rdm_file(path, rdm, {"model": "m", "layer": "l", "stimulus_digest": "d"}, "test")
    s = 8 * 300 * 299 // 2
    with h5py.File(path) as f:
        assert sum(f[name].nbytes for name in f) == 2 * s
        np.testing.assert_array_equal(f["ranks"][()], rankdata(f["condensed"][()]))
    assert path.stat().st_size <= 2 * s + 16384  # 2 S plus a fixed HDF5 header and attributes
    rec = results.read_rdm(path, square=True)
    ref = squareform(pdist(x))
    assert np.max(np.abs(rec["rdm"] - ref)) <= 1e-10 * ref.max()
    assert rec["rdm"][3, 7] == 0 and np.all(np.diag(rec["rdm"]) == 0) and np.array_equal(rec["rdm"], rec["rdm"].T)
    assert rec["label"] == "m/l" and rec["n_stimuli"] == 300


@pytest.mark.parametrize("method", METHODS_RDM)
@pytest.mark.parametrize("tie_round", [None, 1])
def test_vector_chunks_are_the_in_memory_vectors_bit_for_bit(tmp_path, method, tie_round):
    path = write_rdms(tmp_path, activations(1), tie_round)[0]
    with h5py.File(path) as f:
        upper = f["condensed"][()]
        whole = per_rdm_vector(upper, method)
        pieces = np.concatenate([rdmfile.vector_chunk(f, method, lo, lo + 7) for lo in range(0, upper.size, 7)])
    np.testing.assert_array_equal(pieces, whole)


@pytest.mark.parametrize("method", METHODS_RDM + ("cka",))  # the new measures: tests/test_measures_workflow.py
@pytest.mark.parametrize("k", [6, 10])  # all rows on the thin path (<= THIN_ROWS), or the chunked product
def test_streaming_equals_in_memory_aggregate(tmp_path, method, k):
    acts = activations(k)
    if method == "cka":
        paths = write_grams(tmp_path, acts)
        vectors = np.stack([centered_gram_unit(x) for x in acts])
    else:
        paths = write_rdms(tmp_path, acts, tie_round=1)
        vectors = np.stack([per_rdm_vector(results.read_rdm(p)["condensed"], method) for p in paths])
    out = tmp_path / "so.h5"
    spec = {"method": method, "chunk_mb": 1e-4}  # 104 bytes: a few pairs per chunk, many chunks
    matrix, _ = write_second_order(paths, out, tmp_path / "so.tsv", spec, "code", store_root=tmp_path / "store")
    np.testing.assert_allclose(matrix, aggregate(vectors, method), rtol=0, atol=1e-12)
    assert np.array_equal(matrix, matrix.T) and np.all(np.diag(matrix) == 0)


def test_kendall_block_against_scipy(tmp_path):
    paths = write_rdms(tmp_path, activations(3))  # no ties: tau-a is scipy's tau-b
    sim = similarity_block(paths[:1], paths, "kendall_tau_a")
    conds = [results.read_rdm(p)["condensed"] for p in paths]
    np.testing.assert_allclose(sim[0, 1:], [kendalltau(conds[0], c)[0] for c in conds[1:]], atol=1e-12)


def counts(caplog):
    found = [re.search(r"pairs: reused (\d+), computed (\d+)", r.getMessage()) for r in caplog.records]
    found = [m for m in found if m]
    return int(found[-1][1]), int(found[-1][2])


@pytest.mark.parametrize("method", ["spearman", "kendall_tau_a"])
def test_incremental_equals_cold_and_computes_only_the_new_row(tmp_path, caplog, method):
    caplog.set_level(logging.INFO)
    acts = activations(7, seed=3)
    paths = write_rdms(tmp_path, acts, tie_round=1)
    spec = {"method": method, "chunk_mb": 1e-3}
    store_root = tmp_path / "store"

    def run(ps, root, name):
        return write_second_order(ps, tmp_path / f"{name}.h5", tmp_path / f"{name}.tsv", spec, "code",
                                  out_pairs=tmp_path / f"{name}_pairs.h5", store_root=root)[0]

    run(paths[:6], store_root, "six")
    assert counts(caplog) == (0, 15)
    added = run(paths, store_root, "seven")
    assert counts(caplog) == (15, 6)  # only the new RDM's row
    cold = run(paths, tmp_path / "cold_store", "cold")
    assert counts(caplog) == (0, 21)
    np.testing.assert_allclose(added, cold, rtol=0, atol=1e-12)
    removed = run(paths[:3] + paths[4:], store_root, "removed")
    assert counts(caplog) == (15, 0)
    keep = [0, 1, 2, 4, 5, 6]
    np.testing.assert_allclose(removed, cold[np.ix_(keep, keep)], rtol=0, atol=1e-12)
    run(paths, store_root, "again")
    assert counts(caplog) == (21, 0)
    with h5py.File(tmp_path / "seven_pairs.h5") as f:
        assert f.attrs["method"] == method and f["similarity"].shape == (7, 7)


def test_a_changed_code_digest_reuses_nothing(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    paths = write_rdms(tmp_path, activations(4))
    root = tmp_path / "store"
    write_second_order(paths, tmp_path / "a.h5", tmp_path / "a.tsv", {"method": "pearson"}, "one", store_root=root)
    write_second_order(paths, tmp_path / "b.h5", tmp_path / "b.tsv", {"method": "pearson"}, "two", store_root=root)
    assert counts(caplog) == (0, 6)
    write_second_order(paths, tmp_path / "c.h5", tmp_path / "c.tsv", {"method": "cosine"}, "one", store_root=root)
    assert counts(caplog) == (0, 6)


def test_inference_tsv(tmp_path):
    paths = write_rdms(tmp_path, activations(3))
    root = tmp_path / "store"
    off = tmp_path / "off.tsv"
    write_second_order(paths, tmp_path / "off.h5", tmp_path / "m.tsv", {"method": "spearman"}, "c",
                       out_inference=off, store_root=root)
    assert off.read_text() == "row\tcolumn\tdissimilarity\tci_lower\tci_upper\tboot_std\tp_value\n"
    on = tmp_path / "on.tsv"
    spec = {"method": "spearman", "bootstrap": 20, "permutations": 9, "seed": 1, "ci": 0.9}
    write_second_order(paths, tmp_path / "on.h5", tmp_path / "m2.tsv", spec, "c", out_inference=on, store_root=root)
    res = read_second_order(tmp_path / "on.h5")
    lines = [line.split("\t") for line in on.read_text().splitlines()[1:]]
    assert len(lines) == 3
    for row, col, *values in lines:
        a, b = res["labels"].index(row), res["labels"].index(col)
        expected = [res[k][a, b] for k in ("matrix", "ci_lower", "ci_upper", "boot_std", "p_values")]
        assert [float(v) for v in values] == expected


def test_two_stored_runs_are_merged(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    paths = write_rdms(tmp_path, activations(6, seed=5))
    root, spec = tmp_path / "store", {"method": "rho_a", "chunk_mb": 1e-3}
    write_second_order(paths[:4], tmp_path / "a.h5", tmp_path / "a.tsv", spec, "c", store_root=root)
    write_second_order(paths[3:], tmp_path / "b.h5", tmp_path / "b.tsv", spec, "c", store_root=root)
    merged, _ = write_second_order(paths, tmp_path / "m.h5", tmp_path / "m.tsv", spec, "c", store_root=root)
    assert counts(caplog) == (9, 6)  # 6 + 3 stored; the 3 x 2 pairs across the runs computed
    assert "(2 rows read against all, 2 stored objects merged)" in caplog.text  # rows of RDMs 4 and 5 only
    cold, _ = write_second_order(paths, tmp_path / "c.h5", tmp_path / "c.tsv", spec, "c", store_root=tmp_path / "s2")
    np.testing.assert_allclose(merged, cold, rtol=0, atol=1e-12)


def reference_similarity(paths, method):
    """In-memory s(a, b) of every pair of files: dot products of the whole per-RDM vectors."""
    if method == "cka":
        return None
    vectors = np.stack([per_rdm_vector(results.read_rdm(p)["condensed"], method) for p in paths])
    return vectors @ vectors.T


@pytest.mark.parametrize("method", VECTOR_METHODS + ("cka",))
@pytest.mark.parametrize("chunk_bytes", [200, 2**20])  # pieces of a few pairs; the whole vector at once
def test_thin_block_equals_in_memory(tmp_path, method, chunk_bytes):
    acts = activations(12, seed=7)
    if method == "cka":
        paths = write_grams(tmp_path, acts)
        vectors = np.stack([centered_gram_unit(x) for x in acts])
        ref = vectors @ vectors.T
    else:
        paths = write_rdms(tmp_path, acts, tie_round=1)
        ref = reference_similarity(paths, method)
    # rows inside and outside the columns, a repeated row and a repeated column: the thin path
    rows, cols = [3, 11, 3], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 2]
    sim = similarity_block([paths[i] for i in rows], [paths[j] for j in cols], method, chunk_bytes)
    np.testing.assert_allclose(sim, ref[np.ix_(rows, cols)], rtol=0, atol=1e-12)
    # nine distinct rows: the chunked product; same values
    wide = similarity_block(paths[:9], paths, method, chunk_bytes)
    np.testing.assert_allclose(wide, ref[:9], rtol=0, atol=1e-12)


class CountingFile(h5py.File):
    opened: list = []

    def __init__(self, name, *args, **kwargs):
        CountingFile.opened.append(str(name))
        super().__init__(name, *args, **kwargs)


@pytest.mark.parametrize("limit", [None, 3])  # every file held open; only 3 held, the rest reopened per read
def test_each_rdm_file_is_opened_once_per_run(tmp_path, monkeypatch, caplog, limit):
    caplog.set_level(logging.INFO)
    paths = write_rdms(tmp_path, activations(8, seed=2), tie_round=1)
    spec = {"method": "spearman", "chunk_mb": 1e-3}
    root = tmp_path / "store"
    cold, _ = write_second_order(paths, tmp_path / "c.h5", tmp_path / "c.tsv", spec, "c", store_root=tmp_path / "s")
    write_second_order(paths[:7], tmp_path / "a.h5", tmp_path / "a.tsv", spec, "c", store_root=root)
    CountingFile.opened = []
    monkeypatch.setattr(h5py, "File", CountingFile)
    if limit is not None:
        monkeypatch.setattr("rsaflow.second_order.inputs.max_open", lambda: limit)
    added, _ = write_second_order(paths, tmp_path / "b.h5", tmp_path / "b.tsv", spec, "c", store_root=root)
    assert counts(caplog) == (21, 7)
    np.testing.assert_allclose(added, cold, rtol=0, atol=1e-12)
    opens = [CountingFile.opened.count(str(p)) for p in paths]
    if limit is None:
        assert opens == [1] * 8
    else:  # held: one open; beyond the limit: the checked open, then one plain open per read (chunks)
        assert sorted(opens)[:3] == [1, 1, 1] and min(sorted(opens)[3:]) > 1


def index_files(root):
    return sorted((root / "pairs" / "index").glob("*/*.json"))


def test_store_index_finds_reusable_objects_and_opens_no_other(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    paths = write_rdms(tmp_path, activations(6, seed=4))
    root = tmp_path / "store"

    def run(ps, method, code, name):
        return write_second_order(ps, tmp_path / f"{name}.h5", tmp_path / f"{name}.tsv",
                                  {"method": method, "chunk_mb": 1e-3}, code, store_root=root)[0]

    run(paths[:5], "pearson", "c", "p5")
    for i, method in enumerate(["cosine", "rho_a", "spearman"]):  # objects another run cannot use
        run(paths[:5], method, "c", f"o{i}")
    run(paths[:5], "pearson", "other-code", "oc")
    assert len(index_files(root)) == 5
    CountingFile.opened = []
    monkeypatch.setattr(h5py, "File", CountingFile)
    added = run(paths, "pearson", "c", "p6")
    assert counts(caplog) == (10, 5)
    read = [p for p in CountingFile.opened if "/store/" in p and not p.rsplit("/", 1)[1].startswith(".")]
    assert len(read) == 1  # only the object it reuses (its own is written under a temporary name)
    monkeypatch.undo()
    cold = write_second_order(paths, tmp_path / "cold.h5", tmp_path / "cold.tsv", {"method": "pearson"}, "c",
                              store_root=tmp_path / "s2")[0]
    np.testing.assert_allclose(added, cold, rtol=0, atol=1e-12)


def test_store_index_is_rebuilt_and_pruned_objects_are_dropped(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    paths = write_rdms(tmp_path, activations(6, seed=6))
    root = tmp_path / "store"
    spec = {"method": "spearman", "chunk_mb": 1e-3}

    def run(ps, name):
        return write_second_order(ps, tmp_path / f"{name}.h5", tmp_path / f"{name}.tsv", spec, "c",
                                  store_root=root)[0]

    run(paths[:4], "four")
    run(paths[2:], "last")
    before = index_files(root)
    assert len(before) == 2
    for f in before:  # a store written before the index: objects only
        f.unlink()
    merged = run(paths, "all")
    assert counts(caplog) == (11, 4)  # both objects found again (6 + 6 - 1 shared pair)
    assert len(index_files(root)) == 3  # the two rebuilt and this run's
    # a pruned object: its index file goes, and its pairs are computed again
    victim = next(p for p in (root / "pairs").glob("*/*.h5") if p.stem == before[0].stem)
    victim.unlink()
    for obj in (root / "pairs").glob("*/*.h5"):
        if obj.stem != before[1].stem:
            obj.unlink()
    run(paths, "again")
    assert counts(caplog) == (6, 9)
    assert before[0].stem not in {p.stem for p in index_files(root)}
    # an index that disagrees with its object (claims all six keys; the object holds four) is not trusted
    six = next(p for p in index_files(root) if p.stem not in {b.stem for b in before})
    for obj in (root / "pairs").glob("*/*.h5"):
        if obj.stem != before[1].stem:
            obj.unlink()
    entry = next(p for p in index_files(root) if p.stem == before[1].stem)
    entry.write_text(six.read_text())
    trusted = run(paths, "trusted")
    assert counts(caplog) == (0, 15)
    cold = write_second_order(paths, tmp_path / "cold.h5", tmp_path / "cold.tsv", spec, "c",
                              store_root=tmp_path / "s2")[0]
    np.testing.assert_allclose(merged, cold, rtol=0, atol=1e-12)
    np.testing.assert_allclose(trusted, cold, rtol=0, atol=1e-12)
