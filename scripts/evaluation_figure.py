"""Rule evaluation_figure: the model-comparison figure of one brain region."""

from rsaflow.plots.evaluation import draw_evaluation
from rsaflow.jobs.common import job

with job(snakemake):
    draw_evaluation(snakemake.input[0], snakemake.output[0], snakemake.params.alpha)
