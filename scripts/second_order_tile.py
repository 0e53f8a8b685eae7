"""Rule second_order_tile: one tile (block i x block j) of a second order split by compare.tiles."""

import json

from rsaflow.jobs.common import job
from rsaflow.jobs.second_order_tile import write_tile

with job(snakemake):
    write_tile(
        snakemake.input.rows,
        snakemake.input.cols,
        snakemake.output[0],
        json.loads(snakemake.params.spec),
        snakemake.params.code,
    )
