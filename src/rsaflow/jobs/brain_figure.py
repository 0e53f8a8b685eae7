"""Rule ``brain_figure``: model layers versus brain regions (external groups) with noise ceilings."""

from __future__ import annotations

from rsaflow.plots import brain
from rsaflow.results import read_second_order


def draw_brain(second_order_path, out_path) -> None:
    """:func:`rsaflow.plots.brain.brain_plot` of a second-order file that holds external groups."""
    brain.brain_plot(read_second_order(second_order_path), out_path)
