"""Step ``second_order_tile``: one tile of a second order split over many jobs (``compare.tiles``).

A second order of K RDMs costs O(K^2 P) multiply-adds in one job (P pairs of stimuli per RDM). For
a model zoo (thousands of RDMs of thousands of stimuli) one job takes too long for a cluster's
time limit, so ``compare.tiles: B`` (B >= 2) splits the K x K matrix into B (B + 1) / 2 tile jobs
that a cluster runs in parallel, and the ``second_order`` job only assembles them.

Blocks. Each RDM belongs to block :func:`block_of` (label) = int(sha256(group)[:16], 16) mod B,
where the group (:func:`tile_group`) is the model of a ``model/layer`` label and the whole label of
an external RDM: a function of the label alone, and all layers of a model share one block. So
adding or removing an RDM, a layer or a whole model changes the inputs of one block's tiles only
(the B tiles of its row), and Snakemake reruns exactly those, even though adding a layer reruns
the model's extraction and so every RDM job of that model (Snakemake has no early cutoff). Tile
(i, j), i <= j, compares the RDMs of block i with those of block j (``similarity_block``, streamed
in chunks of ``compare.chunk_mb`` like the one-job second order). A block holds whole models:
with G groups (models plus external RDMs) in B blocks, a block holds G / B groups on average and
up to about twice that (hashing), so choose B at most about G / 4; one model's layers are never
split, so a single model's layer sweep gains nothing from tiles.

Reuse. Snakemake deletes a rerun tile's old output first, so each tile is also a store object
(kind ``tile``: the sorted content keys of its rows and columns, their similarities, the method
and the code digest). A rerun tile looks for the object of exactly its keys; failing that it takes
every entry it can from the stored tiles of the same method and code, and computes only the rows
(or columns) with unknown entries: adding one RDM computes its row of each tile of its row,
O(K P) work in all. The log says ``tile: reused R, computed C`` (entries).

Memory per tile job: chunk_mb + 3 x 8 x rows x cols B + 0.6 MB per open file (+ 300 MB of
libraries); kendall_tau_a: ~10 x 8 P. Time: O(rows x cols x P).
"""

from __future__ import annotations

import hashlib
import logging
import time

import numpy as np

from rsaflow import h5io, store
from rsaflow.errors import InputFileError
from rsaflow.jobs.second_order import RunFiles, _content_key, similarity_block
from rsaflow.provenance import base_attrs
from rsaflow.results import check_same_stimuli

log = logging.getLogger(__name__)

#: Store kind (and file kind) of a tile.
TILE_KIND = "tile"


def tile_group(label: str) -> str:
    """What decides the block of the RDM labelled ``label``: its model (``model/layer``), or the
    whole label of an external RDM (``external/name``), which stands alone."""
    model = label.split("/", 1)[0]
    return label if model in ("external", "brain") else model


def block_of(label: str, n_blocks: int) -> int:
    """The block of the RDM labelled ``label``: int(sha256(tile_group(label))[:16], 16) mod ``n_blocks``."""
    return int(hashlib.sha256(tile_group(label).encode()).hexdigest()[:16], 16) % n_blocks


def tile_members(labels, n_blocks: int) -> list[list[int]]:
    """Indices into ``labels`` of each block 0..n_blocks-1 (in the order of ``labels``)."""
    blocks: list[list[int]] = [[] for _ in range(n_blocks)]
    for i, label in enumerate(labels):
        blocks[block_of(label, n_blocks)].append(i)
    return blocks


def _stored_entries(row_keys, col_keys, method: str, code: str, root) -> tuple[np.ndarray, np.ndarray]:
    """(similarity, known) of rows x cols filled from every stored tile of ``method`` and ``code``
    (either orientation: s(a, b) = s(b, a))."""
    sim = np.zeros((len(row_keys), len(col_keys)))
    known = np.zeros(sim.shape, dtype=bool)
    rpos, cpos = {k: i for i, k in enumerate(row_keys)}, {k: j for j, k in enumerate(col_keys)}
    folder = store.store_root(root) / TILE_KIND
    for obj in sorted(folder.glob("*/*.h5")) if folder.is_dir() else []:
        try:
            with h5io.open_artifact(obj, TILE_KIND) as f:
                if f.attrs.get("method") != method or f.attrs.get("code_sha256") != code:
                    continue
                rk, ck = h5io.texts(f["row_keys"][()]), h5io.texts(f["col_keys"][()])
                for theirs_r, theirs_c, transpose in ((rk, ck, False), (ck, rk, True)):
                    a = [(i, rpos[k]) for i, k in enumerate(theirs_r) if k in rpos]
                    b = [(j, cpos[k]) for j, k in enumerate(theirs_c) if k in cpos]
                    if not a or not b:
                        continue
                    (ti, mi), (tj, mj) = zip(*a), zip(*b)
                    block = f["similarity"][()]
                    block = block.T if transpose else block
                    sim[np.ix_(mi, mj)] = block[np.ix_(ti, tj)]
                    known[np.ix_(mi, mj)] = True
        except (InputFileError, OSError):  # a foreign or vanished object: skip it
            continue
    return sim, known


def tile_similarities(row_paths, row_keys, col_paths, col_keys, method: str, code: str, chunk_bytes: int,
                      root=None, files: RunFiles | None = None) -> tuple[np.ndarray, int]:
    """rows x cols similarities, reusing stored tiles; returns (similarity, entries computed).

    Computes the rows with unknown entries against all columns, or the columns with unknown
    entries against all rows, whichever is fewer entries; identical keys give s = the diagonal rule
    of ``similarity_block`` (computed like any other entry).
    """
    sim, known = _stored_entries(row_keys, col_keys, method, code, root)
    if known.all():
        return sim, 0
    rows_todo = np.flatnonzero(~known.all(axis=1))
    cols_todo = np.flatnonzero(~known.all(axis=0))
    if rows_todo.size * len(col_keys) <= cols_todo.size * len(row_keys):
        block = similarity_block([row_paths[i] for i in rows_todo], col_paths, method, chunk_bytes, files)
        sub, mask = sim[rows_todo], ~known[rows_todo]
        sub[mask] = block[mask]
        sim[rows_todo] = sub
    else:
        block = similarity_block([col_paths[j] for j in cols_todo], row_paths, method, chunk_bytes, files).T
        sub, mask = sim[:, cols_todo], ~known[:, cols_todo]
        sub[mask] = block[mask]
        sim[:, cols_todo] = sub
    return sim, int((~known).sum())


def _records(paths, files: RunFiles) -> list[dict]:
    return sorted((files.record(p) for p in paths), key=lambda r: r["label"])


def write_tile(row_paths, col_paths, out, spec: dict, code_files, store_root=None) -> np.ndarray:
    """Write tile ``out``: similarities (``spec['method']``) of every RDM of ``row_paths`` (rows,
    sorted by label) with every RDM of ``col_paths`` (columns, sorted by label); returns them.
    Each input is opened and checked once (rsaflow.jobs.second_order.RunFiles)."""
    method = spec["method"]
    with RunFiles(method) as files:
        return _write_tile(_records(row_paths, files), _records(col_paths, files), out, spec, code_files,
                           store_root, files)


def _write_tile(rows: list[dict], cols: list[dict], out, spec: dict, code_files, store_root,
                files: RunFiles) -> np.ndarray:
    method = spec["method"]
    if not rows or not cols:
        raise ValueError("a tile needs at least one RDM in each of its blocks")
    digest = check_same_stimuli(rows + cols)
    code = base_attrs(spec, code_files)["code_sha256"]
    rkeys, ckeys = [_content_key(r) for r in rows], [_content_key(r) for r in cols]
    attrs = {"method": method, "code_sha256": code, "stimulus_digest": digest}
    key = store.make_key(TILE_KIND, {"rows": rkeys, "cols": ckeys}, attrs)
    if store.fetch(TILE_KIND, key, out, store_root):
        log.info("tile: reused %d, computed 0 (%d x %d RDMs; all from the store)", len(rows) * len(cols),
                 len(rows), len(cols))
        with h5io.open_artifact(out, TILE_KIND) as f:
            return f["similarity"][()]
    start = time.perf_counter()
    chunk_bytes = int(spec.get("chunk_mb", 256) * 2**20)
    sim, computed = tile_similarities([r["path"] for r in rows], rkeys, [c["path"] for c in cols], ckeys, method,
                                      code, chunk_bytes, store_root, files)
    log.info("tile: reused %d, computed %d (%d x %d RDMs) in %.2f s", sim.size - computed, computed, len(rows),
             len(cols), time.perf_counter() - start)
    datasets = {
        "row_keys": np.array(rkeys, dtype=object),
        "col_keys": np.array(ckeys, dtype=object),
        "row_labels": np.array([r["label"] for r in rows], dtype=object),
        "col_labels": np.array([c["label"] for c in cols], dtype=object),
        "similarity": sim,
    }
    h5io.write_h5(out, TILE_KIND, datasets, {**base_attrs(spec, code_files), **attrs})
    store.put(TILE_KIND, key, out, store_root)
    return sim


def assemble(records: list[dict], tile_paths, method: str, digest: str) -> np.ndarray:
    """The K x K similarities of ``records`` (sorted by label) from tile files; refuses a tile of
    another method or stimulus set, a tile whose RDM contents differ from the records' (stale),
    and any pair no tile covers."""
    where = {r["label"]: i for i, r in enumerate(records)}
    keys = [_content_key(r) for r in records]
    sim = np.full((len(records), len(records)), np.nan)
    for path in tile_paths:
        with h5io.open_artifact(path, TILE_KIND) as f:
            if f.attrs["method"] != method or f.attrs["stimulus_digest"] != digest:
                raise InputFileError(path, f"tile of method {f.attrs['method']!r} on stimuli "
                                           f"{f.attrs['stimulus_digest']}, not {method!r} on {digest}")
            labels = [h5io.texts(f[f"{side}_labels"][()]) for side in ("row", "col")]
            tile_keys = [h5io.texts(f[f"{side}_keys"][()]) for side in ("row", "col")]
            block = f["similarity"][()]
        idx = []
        for side_labels, side_keys in zip(labels, tile_keys):
            missing = [lab for lab in side_labels if lab not in where]
            stale = [lab for lab, k in zip(side_labels, side_keys) if lab in where and keys[where[lab]] != k]
            if missing or stale:
                raise InputFileError(path, f"tile of other RDMs (not in this analysis: {missing[:3]}; "
                                           f"changed since: {stale[:3]}); rerun the workflow")
            idx.append([where[lab] for lab in side_labels])
        sim[np.ix_(*idx)] = block
        sim[np.ix_(idx[1], idx[0])] = block.T
    holes = np.argwhere(np.isnan(sim))
    if holes.size:
        a, b = holes[0]
        raise ValueError(f"no tile holds the pair {records[a]['label']} x {records[b]['label']} "
                         f"({len(holes)} entries missing)")
    return sim
