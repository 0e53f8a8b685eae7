"""Rule second_order_figure: heatmap of the second-order matrix."""

from rsaflow.jobs.common import job
from rsaflow.jobs.second_order_figure import draw_second_order

with job(snakemake):
    draw_second_order(snakemake.input.matrix, snakemake.output[0])
