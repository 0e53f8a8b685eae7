"""Tiles of a second order split by ``compare.tiles``: their similarities, reused by content, and their assembly.

A tile (i, j) holds the similarities of the inputs of block i (rows) with those of block j
(columns; rsaflow.second_order.tiling). Each is also a store object (kind ``tile``: the sorted
content keys of its rows and columns, their similarities, the method and the code digest), so a
rerun tile computes only its rows (or columns) with entries no stored tile of the same method
and code has (see :mod:`rsaflow.jobs.second_order_tile`).
"""

from __future__ import annotations

import numpy as np

from rsaflow import h5io, store
from rsaflow.errors import InputFileError
from rsaflow.second_order.blocks import similarity_block
from rsaflow.second_order.inputs import RunFiles, content_key

#: Store kind (and file kind) of a tile.
TILE_KIND = "tile"


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


def assemble(records: list[dict], tile_paths, method: str, digest: str) -> np.ndarray:
    """The K x K similarities of ``records`` (sorted by label) from tile files; refuses a tile of
    another method or stimulus set, a tile whose RDM contents differ from the records' (stale),
    and any pair no tile covers."""
    where = {r["label"]: i for i, r in enumerate(records)}
    keys = [content_key(r) for r in records]
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
