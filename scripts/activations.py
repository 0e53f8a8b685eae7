"""Rule activations: run the stimuli through one model once, all its layers (the only job that imports torch)."""

import json

from rsaflow.jobs.common import job

with job(snakemake):
    from rsaflow.extract import extract_model
    from rsaflow.provenance import base_attrs

    spec = json.loads(snakemake.params.spec)
    extract_model(
        snakemake.input.stimuli,
        snakemake.output[0],
        spec,
        snakemake.threads,
        base_attrs(spec, snakemake.params.code),
        gpus_requested=snakemake.resources.get("gpu", 0),
    )
