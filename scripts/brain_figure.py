"""Rule brain_figure: bars per model layer against each brain region, noise ceiling as a band."""

from rsaflow.jobs.brain_figure import draw_brain
from rsaflow.jobs.common import job

with job(snakemake):
    draw_brain(snakemake.input.matrix, snakemake.output[0])
