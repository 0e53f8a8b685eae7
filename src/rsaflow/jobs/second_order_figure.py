"""Rule ``second_order_figure``: the heatmap of a second-order matrix."""

from __future__ import annotations

from rsaflow.plots import second_order
from rsaflow.results import read_second_order


def draw_second_order(second_order_path, out_path) -> None:
    """:func:`rsaflow.plots.second_order.second_order_heatmap` of a second-order file."""
    second_order.second_order_heatmap(read_second_order(second_order_path), out_path)
