"""Rule cka_gram: a layer's unit-norm centred Gram matrix, for linear CKA."""

import json

from rsaflow.jobs.common import job
from rsaflow.jobs.rdm import write_cka

with job(snakemake):
    write_cka(snakemake.input.activations, snakemake.output[0], json.loads(snakemake.params.spec), snakemake.input.code)
