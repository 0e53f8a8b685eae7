"""Rule external_rdm: every external RDM of the config (files or groups of subjects' RDMs), checked
against the stimulus set, each computed or reused from the store by its own key."""

import json

from rsaflow.jobs.common import job
from rsaflow.jobs.external_rdm import write_externals

with job(snakemake):
    write_externals(
        json.loads(snakemake.params.spec),
        snakemake.input.stimuli,
        list(snakemake.output),
        list(snakemake.log)[1:],
        snakemake.params.code,
        snakemake.threads,
    )
