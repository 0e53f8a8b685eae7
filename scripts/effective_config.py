"""Rule effective_config: the validated config with defaults, for the report."""

from rsaflow.jobs.common import job
from rsaflow.jobs.effective_config import write_effective_config

with job(snakemake):
    write_effective_config(snakemake.output[0], snakemake.params.spec)
