"""Rule stimulus_mds_figure: each RDM's stimuli in 2-D (classical MDS), coloured by class."""

from rsaflow.jobs.common import job
from rsaflow.jobs.stimulus_mds_figure import draw_stimulus_mds

with job(snakemake):
    draw_stimulus_mds(snakemake.input.rdms, snakemake.input.stimuli, snakemake.output[0])
