"""Rule stimulus_grid: one row of images per class."""

from rsaflow.jobs.common import job
from rsaflow.jobs.stimulus_grid import draw_stimulus_grid

with job(snakemake):
    draw_stimulus_grid(snakemake.input.stimuli, snakemake.output[0])
