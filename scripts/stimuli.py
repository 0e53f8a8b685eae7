"""Rule stimuli: select the stimulus set of the config's ``stimuli`` slice."""

import json

from rsaflow.jobs.common import job
from rsaflow.jobs.stimuli import write_stimuli

with job(snakemake):
    write_stimuli(snakemake.output[0], json.loads(snakemake.params.spec), snakemake.params.code)
