"""Tile membership of ``compare.tiles``: which block each input of an analysis belongs to.

Standard library only (the DAG build imports it to list the tile jobs' inputs). Each RDM belongs
to block :func:`block_of` (label) = int(sha256(group)[:16], 16) mod B, where the group
(:func:`tile_group`) is the model of a ``model/layer`` label and the whole label of an external
RDM: a function of the label alone, and all layers of a model share one block (see
:mod:`rsaflow.jobs.second_order_tile`).
"""

from __future__ import annotations

import hashlib


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
