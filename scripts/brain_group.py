"""Rule brain_group: a region's subjects' RDMs as one group (mean RDM and subjects), like an external group."""

from rsaflow.jobs.brain_rdm import write_brain_group
from rsaflow.jobs.common import job

with job(snakemake):
    write_brain_group(
        list(snakemake.input.subjects),
        snakemake.output[0],
        snakemake.wildcards.region,
        snakemake.params.code,
    )
