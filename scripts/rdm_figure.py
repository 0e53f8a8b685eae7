"""Rule rdm_figure: all RDMs as percentile heatmaps."""

from rsaflow.jobs.common import job
from rsaflow.jobs.rdm_figure import draw_rdms

with job(snakemake):
    draw_rdms(snakemake.input.rdms, snakemake.input.stimuli, snakemake.output[0])
