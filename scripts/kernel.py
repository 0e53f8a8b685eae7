"""Rule kernel: a layer's per-layer artifact for the activation measures (computed or reused by content)."""

import json

from rsaflow.jobs.common import job
from rsaflow.jobs.kernel import write_kernel

with job(snakemake):
    write_kernel(
        f"{snakemake.input.activations}/{snakemake.wildcards.layer}.h5",
        snakemake.output[0],
        json.loads(snakemake.params.spec),
        snakemake.params.code,
        json.loads(snakemake.params.expect),
    )
