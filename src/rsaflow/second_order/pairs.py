"""The pair store: pairwise similarities of an analysis's inputs, reused across runs by content.

One store object (rsaflow.store, kind ``pairs``) per run: the sorted content keys of its inputs
(rsaflow.second_order.inputs.content_key), their K x K similarity matrix, the method and the
job's code digest. :func:`pairwise_similarities` takes the object of exactly its key set, else
merges every stored object of the same method and code (found through the index,
``<store>/pairs/index/<sha256(method, code)[:24]>/<key>.json``) and computes only the rows with
unknown pairs (see :mod:`rsaflow.jobs.second_order`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from rsaflow import h5io, store
from rsaflow.errors import InputFileError
from rsaflow.methods import method_info
from rsaflow.second_order.blocks import pairwise, similarity_block
from rsaflow.second_order.inputs import RunFiles

log = logging.getLogger(__name__)

#: Store kind of the pairwise similarity objects.
PAIRS_KIND = "pairs"
#: Folder of the ``pairs`` objects' index in the store (:func:`_index_folder`).
INDEX_DIR = "index"


def _index_folder(method: str, code: str, root) -> Path:
    """The store's index of the ``pairs`` objects of one method and code digest:
    ``<store>/pairs/index/<sha256(method, code)[:24]>/`` (one ``<key>.json`` per object)."""
    tag = hashlib.sha256(json.dumps([method, code]).encode()).hexdigest()[:24]
    return store.store_root(root) / PAIRS_KIND / INDEX_DIR / tag


def _write_index(key: str, keys: list[str], method: str, code: str, root) -> None:
    """Index the ``pairs`` object ``key`` (sorted content ``keys``): ``<key>.json`` holding
    ``{"content_keys": keys}``, written to a unique temporary name and renamed into place. Its
    bytes follow from the key alone, so racing writers (on a cluster's shared filesystem too)
    write the same file."""
    folder = _index_folder(method, code, root)
    path = folder / f"{key}.json"
    if path.is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{key}.json.tmp-{os.getpid()}-{os.urandom(6).hex()}"
    try:
        tmp.write_text(json.dumps({"content_keys": list(keys)}, separators=(",", ":")))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _index_unindexed(root) -> None:
    """Index the ``pairs`` objects that have no index file yet (written before the index existed):
    each is opened once, ever. Foreign or vanished objects are skipped."""
    folder = store.store_root(root) / PAIRS_KIND
    if not folder.is_dir():
        return
    indexed = {p.stem for p in (folder / INDEX_DIR).glob("*/*.json")}
    for obj in sorted(folder.glob("*/*.h5")):
        if obj.stem in indexed:
            continue
        try:
            with h5io.open_artifact(obj, PAIRS_KIND) as f:
                method, code = f.attrs.get("method"), f.attrs.get("code_sha256")
                theirs = h5io.texts(f["content_keys"][()])
        except (InputFileError, OSError):
            continue
        if isinstance(method, str) and isinstance(code, str):
            _write_index(obj.stem, theirs, method, code, root)


def _stored_similarities(keys: list[str], method: str, code: str, root) -> tuple[np.ndarray, np.ndarray, int]:
    """Similarities among ``keys`` found in the store's ``pairs`` objects of ``method`` and ``code``.

    Candidates come from the index of that method and code (:func:`_index_folder`: one small JSON
    file of content keys per object), so a run reads no object that cannot help it and opens only
    those it uses; index files of pruned objects are removed. Returns (similarity, known mask,
    objects used); objects with the most shared keys first.
    """
    k = len(keys)
    sim = np.zeros((k, k))
    known = np.zeros((k, k), dtype=bool)
    where = {key: i for i, key in enumerate(keys)}
    _index_unindexed(root)
    candidates = []
    for entry in sorted(_index_folder(method, code, root).glob("*.json")):
        obj = store.object_path(PAIRS_KIND, entry.stem, root)
        if not obj.is_file():  # pruned: drop its index file
            entry.unlink(missing_ok=True)
            continue
        try:
            theirs = json.loads(entry.read_text())["content_keys"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        shared = [j for j, key in enumerate(theirs) if key in where]
        if len(shared) >= 2:
            candidates.append((len(shared), obj, theirs, shared))
    used = 0
    for _, obj, theirs, shared in sorted(candidates, key=lambda c: -c[0]):
        if known.all():
            break
        mine = np.array([where[theirs[j]] for j in shared])
        if known[np.ix_(mine, mine)].all():
            continue
        try:
            with h5io.open_artifact(obj, PAIRS_KIND) as f:
                stored = h5io.texts(f["content_keys"][()])
                if stored != list(theirs) or f["similarity"].shape != (len(theirs), len(theirs)):
                    continue  # not what the index says: never trust it over the object
                block = f["similarity"][()][np.ix_(shared, shared)]
        except (InputFileError, OSError):  # vanished since: skip it
            continue
        fill = ~known[np.ix_(mine, mine)]
        sub = sim[np.ix_(mine, mine)]
        sub[fill] = block[fill]
        sim[np.ix_(mine, mine)] = sub
        known[np.ix_(mine, mine)] = True
        used += 1
    return sim, known, used


def _rows_to_compute(unknown: np.ndarray) -> np.ndarray:
    """Rows whose full computation covers every unknown pair (symmetric mask): all rows when
    nothing is known, else a greedy cover (most unknown pairs first), e.g. just the added RDMs."""
    if unknown[np.triu_indices(unknown.shape[0], 1)].all():
        return np.arange(unknown.shape[0])
    left = unknown.copy()
    np.fill_diagonal(left, False)
    counts = left.sum(axis=1)
    cover = []
    while counts.max(initial=0) > 0:
        a = int(counts.argmax())
        cover.append(a)
        partners = np.flatnonzero(left[a])
        counts[partners] -= 1
        counts[a] = 0
        left[a, partners] = left[partners, a] = False
    return np.array(sorted(cover), dtype=np.intp)


def pairwise_similarities(paths: list, keys: list[str], method: str, code: str, chunk_bytes: int,
                          out_pairs=None, root=None, files: RunFiles | None = None) -> np.ndarray:
    """K x K similarities of the files ``paths`` (content keys ``keys``, all distinct), reusing
    the store's ``pairs`` objects and computing only the rows that have unknown pairs.

    Writes the run's own ``pairs`` object (and links it to ``out_pairs`` when given). Logs
    ``pairs: reused R, computed C`` (unordered pairs a < b). ``files``: the run's open inputs
    (:class:`RunFiles`), so that each file is opened and checked once per run.
    """
    k = len(keys)
    order = np.argsort(keys)
    skeys = [keys[i] for i in order]
    attrs = {"method": method, "code_sha256": code}
    key = store.make_key(PAIRS_KIND, {"rdms": skeys}, attrs)
    total = k * (k - 1) // 2
    obj = store.object_path(PAIRS_KIND, key, root)
    if obj.is_file():
        with h5io.open_artifact(obj, PAIRS_KIND) as f:
            ssim = f["similarity"][()]
        log.info("pairs: reused %d, computed 0 (all from %s)", total, obj)
        if out_pairs is not None:
            store.fetch(PAIRS_KIND, key, out_pairs, root)
    else:
        start = time.perf_counter()
        ssim, known, used = _stored_similarities(skeys, method, code, root)
        np.fill_diagonal(known, True)
        reused = int(np.triu(known, 1).sum())
        todo = _rows_to_compute(~known)
        spaths = [str(paths[i]) for i in order]
        info = files.info if files is not None else method_info(method)  # the run's look-up (RunFiles)
        if todo.size and pairwise(info):  # one comparison per unknown pair
            for a in todo:
                cols = np.flatnonzero(~known[a])
                if cols.size:
                    ssim[a, cols] = ssim[cols, a] = similarity_block([spaths[a]], [spaths[b] for b in cols], method,
                                                                   chunk_bytes, files)[0]
                    known[a, cols] = known[cols, a] = True
        elif todo.size:
            block = similarity_block([spaths[i] for i in todo], spaths, method, chunk_bytes, files)
            rows = ssim[todo]
            rows[~known[todo]] = block[~known[todo]]
            ssim[todo] = rows
            ssim[:, todo] = rows.T
        diag = np.diag(ssim).copy()
        ssim = np.triu(ssim, 1)
        ssim += ssim.T
        ssim[np.diag_indices(k)] = diag
        computed = total - reused
        log.info("pairs: reused %d, computed %d of %d (%d rows read against all, %d stored objects merged) in %.2f s",
                 reused, computed, total, todo.size, used, time.perf_counter() - start)
        dest = out_pairs if out_pairs is not None else obj.with_name(f".{obj.name}.new-{os.getpid()}")
        h5io.write_h5(dest, PAIRS_KIND, {"content_keys": np.array(skeys, dtype=object), "similarity": ssim}, attrs)
        store.put(PAIRS_KIND, key, dest, root)
        _write_index(key, skeys, method, code, root)
        if out_pairs is None:
            os.unlink(dest)
    inverse = np.empty(k, dtype=np.intp)
    inverse[order] = np.arange(k)
    return ssim[np.ix_(inverse, inverse)]
