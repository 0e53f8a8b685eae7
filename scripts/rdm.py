"""Rule rdm: the RDMs of a model's layers (or of one layer, rdm.jobs: layer), each computed or
reused from the store by content."""

import json

from rsaflow.jobs.common import job
from rsaflow.jobs.rdm import write_rdms

with job(snakemake):
    outputs = list(snakemake.output)
    write_rdms(
        snakemake.input.activations,
        outputs,
        list(snakemake.log)[-len(outputs) :],
        json.loads(snakemake.params.spec),
        snakemake.params.code,
        json.loads(snakemake.params.expect),
        snakemake.threads,
    )
