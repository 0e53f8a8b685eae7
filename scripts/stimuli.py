"""Rule stimuli: select the stimulus set of the config's ``stimuli`` slice."""

import json

from rsaflow.jobs.common import job
from rsaflow.jobs.stimuli import write_stimuli

with job(snakemake):
    write_stimuli(
        snakemake.output.stimuli, json.loads(snakemake.params.spec), snakemake.params.code, snakemake.output.order
    )
