"""Rule effective_config: the validated config with defaults, for the report."""

from rsaflow.config import write_effective_config
from rsaflow.jobs.common import job

with job(snakemake):
    write_effective_config(snakemake.output[0], snakemake.params.spec)
