rule rdm_figure:
    input:
        rdms=main_rdms(),
        stimuli=STIMULI,
    output:
        report(
            figure_path("rdms.png"),
            caption="../report/rdms.rst",
            category="RDMs",
        ),
        figure_path("rdms.pdf"),
    log:
        "results/logs/rdm_figure/rdm_figure.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=rdm_mem_mb,
    params:
        code=code_digest("rdm_figure"),
    script:
        "../../scripts/rdm_figure.py"


rule stimulus_mds_figure:
    input:
        rdms=main_rdms(),
        stimuli=STIMULI,
    output:
        report(
            figure_path("stimulus_mds.png"),
            caption="../report/stimulus_mds.rst",
            category="RDMs",
        ),
        figure_path("stimulus_mds.pdf"),
    log:
        "results/logs/stimulus_mds_figure/stimulus_mds_figure.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=rdm_mem_mb,
    params:
        code=code_digest("stimulus_mds_figure"),
    script:
        "../../scripts/stimulus_mds_figure.py"


rule second_order_figure:
    input:
        matrix=second_order_path("matrix.h5"),
    output:
        report(
            figure_path("{analysis}/heatmap.png"),
            caption="../report/second_order.rst",
            category="Second order",
            subcategory="{analysis}",
        ),
        figure_path("{analysis}/heatmap.pdf"),
    log:
        "results/logs/second_order_figure/{analysis}.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        code=code_digest("second_order_figure"),
    script:
        "../../scripts/second_order_figure.py"


rule mds_figure:
    input:
        matrix=second_order_path("matrix.h5"),
    output:
        report(
            figure_path("{analysis}/mds.png"),
            caption="../report/mds.rst",
            category="Second order",
            subcategory="{analysis}",
        ),
        figure_path("{analysis}/mds.pdf"),
    log:
        "results/logs/mds_figure/{analysis}.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        spec=figures_spec,
        code=code_digest("mds_figure"),
    script:
        "../../scripts/mds_figure.py"


# Only for analyses that external groups join (common.smk: GROUPS, all_outputs).
rule brain_figure:
    input:
        matrix=second_order_path("matrix.h5"),
    output:
        report(
            figure_path("{analysis}/brain.png"),
            caption="../report/brain.rst",
            category="Second order",
            subcategory="{analysis}",
        ),
        figure_path("{analysis}/brain.pdf"),
    log:
        "results/logs/brain_figure/{analysis}.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        code=code_digest("brain_figure"),
    script:
        "../../scripts/brain_figure.py"


rule export_rsatoolbox:
    input:
        rdms=main_rdms(),
        stimuli=STIMULI,
    output:
        EXPORT,
    log:
        "results/logs/export_rsatoolbox/export_rsatoolbox.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        spec=export_spec,
        code=code_digest("export_rsatoolbox"),
    script:
        "../../scripts/export_rsatoolbox.py"
