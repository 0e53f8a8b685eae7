# rsaflow: representational similarity analysis of neural networks.
# Stimuli -> activations per (model, layer) -> RDMs -> second-order matrix -> figures.
from snakemake.utils import min_version

min_version("9.0")


# The default analysis is config.yaml beside this file (also when run with -d elsewhere). A user's
# own --configfile replaces it entirely (schema defaults fill the rest), so the default models never
# leak into a user's analysis. As a module (README), the module statement's config: is used instead.
if not workflow.overwrite_configfiles:

    include: "workflow/rules/default_config.smk"


include: "workflow/rules/common.smk"
include: "workflow/rules/stimuli.smk"
include: "workflow/rules/activations.smk"
include: "workflow/rules/rdms.smk"
include: "workflow/rules/brain.smk"
include: "workflow/rules/second_order.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        all_outputs(),
