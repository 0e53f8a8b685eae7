"""Rule mds_figure: 2-D MDS of the second-order matrix."""

import json

from rsaflow.jobs.common import job
from rsaflow.jobs.mds_figure import draw_mds

with job(snakemake):
    draw_mds(snakemake.input.matrix, snakemake.output[0], json.loads(snakemake.params.spec)["mds_seed"])
