"""RDMs of a grown stimulus set (issue 22 item 2): stored rows copied, new rows computed, equal to cold.

References: scipy's float64 ``pdist`` (the module's tolerance, 1e-10 of the largest distance, as
tests/test_workflow.py) and rsaflow's cold RDM of the same file (1e-12 of the largest distance).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging

import h5py
import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from rsaflow import h5io, methods, rdm_grow, store
from rsaflow.jobs.rdm import write_rdm
from rsaflow.rdm import compute_rdm
from rsaflow.results import read_rdm

SCIPY = {"euclidean": "euclidean", "sqeuclidean": "sqeuclidean", "correlation": "correlation", "cosine": "cosine"}


def patterns(n: int, m: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.standard_normal((n, 4)) @ rng.standard_normal((4, m)) + 0.3 * rng.standard_normal((n, m)), 0)
    return (x + 0.01).astype(np.float32)


def write_acts(path, x: np.ndarray, digest: str) -> str:
    with h5io.atomic_h5(path, "activations") as f:
        f.create_dataset("activations", data=x, chunks=(min(len(x), 16), x.shape[1]))
        h5io.set_attrs(f, {"model": "m", "layer": "l", "node": "l", "node_index": 0, "stimulus_digest": digest,
                           "data_sha256": hashlib.sha256(x.data).hexdigest()})
    return str(path)


def reference(x: np.ndarray, metric: str) -> np.ndarray:
    d = squareform(pdist(x.astype(np.float64), SCIPY[metric]))
    return d / x.shape[1] if metric == "sqeuclidean" else d / np.sqrt(x.shape[1]) if metric == "euclidean" else d


@pytest.fixture
def grown(tmp_path):
    """40 stored rows (an exact duplicate pair among them), then a set of 56: 36 of the old rows in
    another order, 4 dropped, 20 new (one an exact copy of an old row, one a near-duplicate of one)."""
    old = patterns(40, 24)
    old[7] = old[3]
    rng = np.random.default_rng(1)
    new = patterns(20, 24, seed=2)
    new[0] = old[5]
    new[1] = old[6] * np.float32(1 + 1e-6)  # near-duplicate: recomputed directly
    others = np.setdiff1d(np.arange(40), [3, 5, 6, 7])
    keep = np.concatenate([[3, 6, 7], rng.permutation(others)[:33]])  # old[5] dropped; its copy comes back as new
    x = np.concatenate([old[keep], new])[rng.permutation(56)]
    return tmp_path, old, x


@pytest.mark.parametrize("metric", sorted(SCIPY))
def test_grown_set_equals_cold_rdm_and_logs_reused_rows(grown, metric, caplog):
    tmp, old, x = grown
    spec = {"metric": metric, "block": 10}  # several column blocks
    assert write_rdm(write_acts(tmp / "old.h5", old, "a"), tmp / "old_rdm.h5", spec, "code")
    with caplog.at_level(logging.INFO):
        assert write_rdm(write_acts(tmp / "new.h5", x, "b"), tmp / "new_rdm.h5", spec, "code")
    assert "reused 37 of 56 rows, computed 19 rows" in caplog.text  # 36 kept + the exact copy of an old row
    got = read_rdm(tmp / "new_rdm.h5", square=True)["rdm"]
    cold = compute_rdm(x, metric, block=10)
    assert np.array_equal(got, got.T) and np.all(np.diag(got) == 0)
    assert np.max(np.abs(got - cold)) <= 1e-12 * cold.max()
    ref = reference(x, metric)
    assert np.max(np.abs(got - ref)) <= 1e-10 * ref.max()
    # identical bytes give exactly 0 (old[3] = old[7] if both kept; new[0] = old[5])
    digests = rdm_grow.row_digests(x)
    same = (digests[:, None, :] == digests[None, :, :]).all(-1)
    assert same.sum() > x.shape[0] and np.all(got[same] == 0)
    # the copied entries are the stored values bit for bit
    stored = read_rdm(tmp / "old_rdm.h5", square=True)["rdm"]
    pos = rdm_grow.match_rows(digests, rdm_grow.row_digests(old))
    k = np.nonzero(pos >= 0)[0]
    assert np.array_equal(got[np.ix_(k, k)], stored[np.ix_(pos[k], pos[k])])
    with h5py.File(tmp / "new_rdm.h5") as f:
        assert np.array_equal(f["row_sha256"][()], digests)


def test_near_duplicate_of_an_old_row_is_recomputed_directly(grown, caplog):
    tmp, old, x = grown
    spec = {"metric": "euclidean", "block": 64}
    write_rdm(write_acts(tmp / "old.h5", old, "a"), tmp / "old_rdm.h5", spec, "code")
    with caplog.at_level(logging.INFO):
        write_rdm(write_acts(tmp / "new.h5", x, "b"), tmp / "new_rdm.h5", spec, "code")
    near = int(caplog.text.split("RDM done in")[-1].split("(")[1].split()[0])
    assert near >= 1  # the near pair went through the direct formula, as in the cold path
    got = read_rdm(tmp / "new_rdm.h5", square=True)["rdm"]
    i = next(i for i in range(len(x)) if np.array_equal(x[i], old[6] * np.float32(1 + 1e-6)))
    j = next(j for j in range(len(x)) if np.array_equal(x[j], old[6]))
    exact = np.sqrt(np.sum((x[i].astype(np.float64) - x[j]) ** 2) / x.shape[1])
    assert 0 < got[i, j] == pytest.approx(exact, rel=1e-12)


def test_a_small_overlap_or_a_metric_that_is_not_row_local_is_computed_cold(grown, caplog, monkeypatch):
    tmp, old, x = grown
    spec = {"metric": "cosine", "block": 64}
    write_rdm(write_acts(tmp / "old.h5", old[:10], "a"), tmp / "old_rdm.h5", spec, "code")
    with caplog.at_level(logging.INFO):
        write_rdm(write_acts(tmp / "new.h5", x, "b"), tmp / "new_rdm.h5", spec, "code")  # <= 10 of 56 rows known
    assert "reused" not in caplog.text.split("computed rdm")[0].split("new.h5")[-1]
    assert "grown from" not in caplog.text
    write_rdm(write_acts(tmp / "old2.h5", old, "c"), tmp / "old2_rdm.h5", spec, "code")
    entry = methods.METRICS["cosine"]
    monkeypatch.setitem(methods.METRICS, "cosine", dataclasses.replace(entry, row_local=False))
    caplog.clear()
    with caplog.at_level(logging.INFO):
        write_rdm(write_acts(tmp / "new3.h5", x[::-1].copy(), "d"), tmp / "new3_rdm.h5", spec, "code")
    assert "grown from" not in caplog.text and "computed rdm" in caplog.text
    ref = reference(x[::-1], "cosine")
    assert np.max(np.abs(read_rdm(tmp / "new3_rdm.h5", square=True)["rdm"] - ref)) <= 1e-10 * ref.max()
    with pytest.raises(ValueError, match="not row-local"):
        rdm_grow.grow_rdm(x, "cosine", 64, rdm_grow.row_digests(x), np.zeros(45), rdm_grow.row_digests(old[:10]))


def test_family_index_skips_pruned_objects(tmp_path):
    root = tmp_path / "s"
    obj = store.object_path("rdm", "ab" * 32, root)
    obj.parent.mkdir(parents=True)
    obj.write_bytes(b"x")
    store.index_family("rdm", "cd" * 32, "ab" * 32, root)
    store.index_family("rdm", "cd" * 32, "ef" * 32, root)  # listed, no object
    assert store.family_objects("rdm", "cd" * 32, root) == [obj]
    assert store.objects(root) == [obj]  # index entries are not objects
    obj.unlink()
    assert store.family_objects("rdm", "cd" * 32, root) == []
