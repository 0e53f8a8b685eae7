"""Rule brain_rdm: one subject's RDM of one region from its measured responses."""

import json

from rsaflow.jobs.brain_rdm import write_brain_rdm
from rsaflow.jobs.common import job

with job(snakemake):
    write_brain_rdm(
        json.loads(snakemake.params.files),
        snakemake.input.stimuli,
        snakemake.output[0],
        snakemake.wildcards.region,
        snakemake.wildcards.subject,
        json.loads(snakemake.params.spec),
        snakemake.params.code,
    )
