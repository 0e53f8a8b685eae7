"""Rule rdm: the RDM of one (model, layer), computed or reused from the store by content."""

import json

from rsaflow.jobs.common import job
from rsaflow.jobs.rdm import write_rdm

with job(snakemake):
    write_rdm(
        f"{snakemake.input.activations}/{snakemake.wildcards.layer}.h5",
        snakemake.output[0],
        json.loads(snakemake.params.spec),
        snakemake.params.code,
        json.loads(snakemake.params.expect),
    )
