# Brain regions from measured responses (docs/brain.md): one RDM per (region, subject), then the
# region's group, which joins every RDM analysis as brain/<region> (common.smk: labelled_inputs).
rule brain_rdm:
    input:
        unpack(brain_subject_inputs),
        stimuli=STIMULI,
    output:
        brain_rdm_path(),
    log:
        "results/logs/brain_rdm/{region}/{subject}.log",
    benchmark:
        "results/benchmarks/brain_rdm/{region}/{subject}.tsv"
    wildcard_constraints:
        region=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
        subject=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    conda:
        "../../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=brain_rdm_mem_mb,
    params:
        spec=brain_spec,
        files=brain_files_spec,
        code=code_digest("brain_rdm"),
    script:
        "../../scripts/brain_rdm.py"


rule brain_group:
    input:
        subjects=brain_subject_rdms,
    output:
        brain_group_path(),
    log:
        "results/logs/brain_group/{region}.log",
    wildcard_constraints:
        region=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        code=code_digest("brain_group"),
    script:
        "../../scripts/brain_group.py"


# Every model layer against a region's subjects (rsaflow.jobs.brain_eval).
rule brain_eval:
    input:
        layers=brain_eval_layers,
        group=brain_group_path(),
    output:
        h5=evaluation_path("evaluation.h5"),
        layers=evaluation_path("layers.tsv"),
        pairs=evaluation_path("pairs.tsv"),
        commitment=evaluation_path("commitment.tsv"),
    log:
        "results/logs/brain_eval/{region}.log",
    benchmark:
        "results/benchmarks/brain_eval/{region}.tsv"
    wildcard_constraints:
        region=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    conda:
        "../../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=brain_eval_mem_mb,
    params:
        spec=brain_eval_spec,
        code=code_digest("brain_eval"),
    script:
        "../../scripts/brain_eval.py"


rule evaluation_figure:
    input:
        evaluation_path("evaluation.h5"),
    output:
        report(
            figure_path("evaluation/{region}.png"),
            caption="../report/evaluation.rst",
            category="Brain regions",
            subcategory="{region}",
        ),
        figure_path("evaluation/{region}.pdf"),
    log:
        "results/logs/evaluation_figure/{region}.log",
    wildcard_constraints:
        region=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        alpha=lambda wildcards: BRAIN[wildcards.region]["evaluate"]["alpha"],
        code=code_digest("evaluation_figure"),
    script:
        "../../scripts/evaluation_figure.py"
