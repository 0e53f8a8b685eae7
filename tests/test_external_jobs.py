"""One external_rdm job for every entry (issue 22 item 5): each entry's product by its own key, its own log,
entries in parallel threads; a failing entry is logged in its own log and raised, the others still done."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.distance import pdist, squareform

from rsaflow.errors import InputFileError
from rsaflow.jobs.common import setup
from rsaflow.jobs.external_rdm import write_externals
from rsaflow.jobs.stimuli import write_stimuli
from rsaflow.results import read_rdm


@pytest.fixture
def stimuli(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "img" / cls).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "img" / cls / f"{i}.png")
    write_stimuli(tmp_path / "stimuli.h5", {"source": "folder", "root": str(tmp_path / "img"), "per_class": 4,
                                            "seed": 0}, [])
    return tmp_path / "stimuli.h5"


def test_every_entry_in_one_job_with_its_own_log(tmp_path, stimuli):
    rng = np.random.default_rng(1)
    rdms = {}
    for name in ("V1", "V2", "V4", "IT"):
        rdms[name] = squareform(pdist(rng.normal(size=(8, 3))))
        np.save(tmp_path / f"{name}.npy", rdms[name])
    np.save(tmp_path / "bad.npy", np.zeros((5, 5)))  # wrong size: refused, naming the file
    entries = {n: {"path": str(tmp_path / f"{n}.npy"), "order": "stimuli"} for n in rdms}
    entries["bad"] = {"path": str(tmp_path / "bad.npy"), "order": "stimuli"}
    names = sorted(entries)
    outs = [str(tmp_path / "out" / f"{n}.h5") for n in names]
    logs = [str(tmp_path / f"{n}.log") for n in names]
    (tmp_path / "out").mkdir()
    setup(str(tmp_path / "job.log"), 1)
    try:
        with pytest.raises(InputFileError, match=r"bad\.npy"):
            write_externals(entries, stimuli, outs, logs, "c" * 64, threads=2)
        for name, out, log in zip(names, outs, logs):
            text = (tmp_path / f"{name}.log").read_text()
            if name == "bad":
                assert "bad.npy" in text and "computed external" not in text
                continue
            np.testing.assert_array_equal(read_rdm(out, square=True)["rdm"], rdms[name])
            assert "computed external" in text and f"{name}.npy" in text
            assert all(f"{o}.npy" not in text for o in rdms if o != name)  # only its own records
        job_log = (tmp_path / "job.log").read_text()
        assert "external RDMs: 4 computed, 0 reused, 1 failed" in job_log
        del entries["bad"]
        i = names.index("bad")
        del outs[i], logs[i]
        assert write_externals(entries, stimuli, outs, logs, "c" * 64, threads=2) == 0  # all reused
        assert all("reused external" in (tmp_path / f"{n}.log").read_text() for n in rdms)
    finally:
        logging.basicConfig(force=True, handlers=[logging.NullHandler()])


def test_file_digests_come_from_the_dag_builds_cache_while_the_file_is_unchanged(tmp_path, stimuli):
    """The job takes each file's sha256 from the workflow's digest cache (rsaflow.filedigest, filled
    by the DAG build) instead of hashing it again, and hashes it again once its identity changed."""
    import hashlib

    from rsaflow import filedigest, store

    rdm = squareform(pdist(np.random.default_rng(2).normal(size=(8, 3))))
    path = tmp_path / "V1.npy"
    np.save(path, rdm)
    entries = {"V1": {"path": str(path), "order": "stimuli"}}
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert filedigest.file_digests([str(path)], filedigest.CACHE_DIR) == {str(path): sha}  # the DAG build
    cache_file = filedigest.CACHE_DIR / filedigest.CACHE_FILE
    cache = filedigest.load_cache(cache_file)
    cache[str(path.resolve())][4] = "f" * 64  # a digest only the cache holds: read, not recomputed
    filedigest.save_cache(cache_file, cache)

    def run(out):
        write_externals(entries, stimuli, [str(out)], [str(tmp_path / "V1.log")], "c" * 64)
        import h5py

        with h5py.File(out) as f:
            return f.attrs["external_sha256"]

    setup(str(tmp_path / "job.log"), 1)
    try:
        assert run(tmp_path / "a.h5") == "f" * 64
        np.save(path, rdm * 2)  # new bytes, new identity: hashed again
        assert run(tmp_path / "b.h5") == hashlib.sha256(path.read_bytes()).hexdigest()
        assert store.STORE_DIR.is_dir()
    finally:
        logging.getLogger().handlers.clear()
