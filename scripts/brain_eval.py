"""Rule brain_eval: every model layer evaluated against one brain region's subjects."""

import json

from rsaflow.jobs.brain_eval import write_evaluation
from rsaflow.jobs.common import job

with job(snakemake):
    write_evaluation(
        list(snakemake.input.layers),
        snakemake.input.group,
        snakemake.output.h5,
        snakemake.output.layers,
        snakemake.output.pairs,
        snakemake.output.commitment,
        snakemake.wildcards.region,
        json.loads(snakemake.params.spec),
        snakemake.params.code,
    )
