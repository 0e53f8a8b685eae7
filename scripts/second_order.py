"""Rule second_order: 1 - correlation between all RDMs."""

import json

from rsaflow.jobs.common import job
from rsaflow.jobs.second_order import write_second_order

with job(snakemake):
    write_second_order(
        snakemake.input.rdms,
        snakemake.output.h5,
        snakemake.output.tsv,
        json.loads(snakemake.params.spec),
        snakemake.params.code,
    )
