"""Rule stimulus_mds_figure: each RDM's stimuli in 2-D (MDS), coloured by class."""

import json

from rsaflow.jobs.common import job
from rsaflow.jobs.figures import draw_stimulus_mds

with job(snakemake):
    seed = json.loads(snakemake.params.spec)["mds_seed"]
    draw_stimulus_mds(snakemake.input.rdms, snakemake.input.stimuli, snakemake.output[0], seed)
