"""Rule rdm: the RDM of one (model, layer) and its unit vectors for the comparison step."""

import json

from rsaflow.jobs.common import job
from rsaflow.jobs.rdm import write_rdm

with job(snakemake):
    write_rdm(snakemake.input.activations, snakemake.output[0], json.loads(snakemake.params.spec), snakemake.input.code)
