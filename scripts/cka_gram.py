"""Rule cka_gram: a layer's unit-norm centred Gram matrix, for linear CKA (computed or reused by content)."""

import json

from rsaflow.jobs.common import job
from rsaflow.jobs.cka_gram import write_cka

with job(snakemake):
    write_cka(
        f"{snakemake.input.activations}/{snakemake.wildcards.layer}.h5",
        snakemake.output[0],
        json.loads(snakemake.params.spec),
        snakemake.params.code,
        json.loads(snakemake.params.expect),
    )
