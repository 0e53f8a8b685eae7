"""Rule external_rdm: an RDM from a file (or a group of subjects' RDMs), checked against the stimulus set."""

import json

from rsaflow.jobs.common import job
from rsaflow.jobs.external_rdm import write_external

with job(snakemake):
    write_external(
        snakemake.input.rdm,
        snakemake.input.stimuli,
        snakemake.output[0],
        snakemake.wildcards.name,
        json.loads(snakemake.params.spec),
        snakemake.params.code,
    )
