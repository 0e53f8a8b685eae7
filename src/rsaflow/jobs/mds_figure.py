"""Rule ``mds_figure``: 2-D metric MDS of a second-order matrix."""

from __future__ import annotations

from rsaflow.plots import mds
from rsaflow.results import read_second_order


def draw_mds(second_order_path, out_path, seed: int) -> None:
    """:func:`rsaflow.plots.mds.mds_plot` of a second-order file, MDS seeded with ``seed``."""
    mds.mds_plot(read_second_order(second_order_path), seed, out_path)
