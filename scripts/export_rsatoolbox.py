"""Rule export_rsatoolbox: all RDMs in rsatoolbox's HDF5 layout (rsatoolbox.rdm.load_rdm opens it)."""

import json

from rsaflow.jobs.common import job
from rsaflow.jobs.export_rsatoolbox import export_rsatoolbox

with job(snakemake):
    export_rsatoolbox(snakemake.input.rdms, snakemake.input.stimuli, snakemake.output[0],
                      json.loads(snakemake.params.spec)["metric"])
