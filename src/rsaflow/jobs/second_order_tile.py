"""Step ``second_order_tile``: one tile of a second order split over many jobs (``compare.tiles``).

A second order of K RDMs costs O(K^2 P) multiply-adds in one job (P pairs of stimuli per RDM). For
a model zoo (thousands of RDMs of thousands of stimuli) one job takes too long for a cluster's
time limit, so ``compare.tiles: B`` (B >= 2) splits the K x K matrix into B (B + 1) / 2 tile jobs
that a cluster runs in parallel, and the ``second_order`` job only assembles them.

Blocks. Each RDM belongs to block rsaflow.second_order.tiling.block_of (label) =
int(sha256(group)[:16], 16) mod B, where the group (``tile_group``) is the model of a ``model/layer`` label and the whole label of
an external RDM: a function of the label alone, and all layers of a model share one block. So
adding or removing an RDM, a layer or a whole model changes the inputs of one block's tiles only
(the B tiles of its row), and Snakemake reruns exactly those, even though adding a layer reruns
the model's extraction and so every RDM job of that model (Snakemake has no early cutoff). Tile
(i, j), i <= j, compares the RDMs of block i with those of block j (rsaflow.second_order.blocks.similarity_block, streamed
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

import logging
import time

import numpy as np

from rsaflow import h5io, kernels, store
from rsaflow.provenance import base_attrs
from rsaflow.results import check_same_stimuli
from rsaflow.second_order.inputs import RunFiles, content_key
from rsaflow.second_order.tiles import TILE_KIND, tile_similarities

log = logging.getLogger(__name__)


def _records(paths, files: RunFiles) -> list[dict]:
    return sorted((files.record(p) for p in paths), key=lambda r: r["label"])


def write_tile(row_paths, col_paths, out, spec: dict, code_files, store_root=None) -> np.ndarray:
    """Write tile ``out``: similarities (``spec['method']``) of every RDM of ``row_paths`` (rows,
    sorted by label) with every RDM of ``col_paths`` (columns, sorted by label); returns them.
    Each input is opened and checked once (rsaflow.second_order.inputs.RunFiles)."""
    method = spec["method"]
    with RunFiles(method) as files, kernels.using(kernels.select(spec, "second_order")):  # second_order.backend
        return _write_tile(_records(row_paths, files), _records(col_paths, files), out, spec, code_files,
                           store_root, files)


def _write_tile(rows: list[dict], cols: list[dict], out, spec: dict, code_files, store_root,
                files: RunFiles) -> np.ndarray:
    method = spec["method"]
    if not rows or not cols:
        raise ValueError("a tile needs at least one RDM in each of its blocks")
    digest = check_same_stimuli(rows + cols)
    code = base_attrs(spec, code_files)["code_sha256"]
    rkeys, ckeys = [content_key(r) for r in rows], [content_key(r) for r in cols]
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
