"""Rule second_order: 1 - similarity between all RDMs, streamed in chunks, reusing stored pairs."""

import json

from rsaflow.jobs.common import job
from rsaflow.jobs.second_order import write_second_order

with job(snakemake):
    write_second_order(
        snakemake.input.rdms,
        snakemake.output.h5,
        snakemake.output.tsv,
        json.loads(snakemake.params.spec),
        snakemake.params.code,
        out_inference=snakemake.output.inference,
        out_pairs=snakemake.output.pairs,
        tile_paths=snakemake.input.tiles,
    )
