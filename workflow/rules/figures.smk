rule rdm_figure:
    input:
        rdms=rdm_files() + external_files(),
        stimuli="results/stimuli/stimuli.h5",
    output:
        report(
            "results/figures/rdms.png",
            caption="../report/rdms.rst",
            category="RDMs",
        ),
        "results/figures/rdms.pdf",
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
        rdms=rdm_files() + external_files(),
        stimuli="results/stimuli/stimuli.h5",
    output:
        report(
            "results/figures/stimulus_mds.png",
            caption="../report/stimulus_mds.rst",
            category="RDMs",
        ),
        "results/figures/stimulus_mds.pdf",
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
        matrix="results/{so_dir}/matrix.h5",
    output:
        report(
            "results/figures/{so_dir}/heatmap.png",
            caption="../report/second_order.rst",
            category="Second order",
            subcategory="{so_dir}",
        ),
        "results/figures/{so_dir}/heatmap.pdf",
    log:
        "results/logs/second_order_figure/{so_dir}.log",
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
        matrix="results/{so_dir}/matrix.h5",
    output:
        report(
            "results/figures/{so_dir}/mds.png",
            caption="../report/mds.rst",
            category="Second order",
            subcategory="{so_dir}",
        ),
        "results/figures/{so_dir}/mds.pdf",
    log:
        "results/logs/mds_figure/{so_dir}.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        code=code_digest("mds_figure"),
        spec=slice_json("figures"),
    script:
        "../../scripts/mds_figure.py"


# Only for analyses that external groups join (common.smk: GROUPS, all_outputs).
rule brain_figure:
    input:
        matrix="results/{so_dir}/matrix.h5",
    output:
        report(
            "results/figures/{so_dir}/brain.png",
            caption="../report/brain.rst",
            category="Second order",
            subcategory="{so_dir}",
        ),
        "results/figures/{so_dir}/brain.pdf",
    log:
        "results/logs/brain_figure/{so_dir}.log",
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
        rdms=rdm_files() + external_files(),
        stimuli="results/stimuli/stimuli.h5",
    output:
        "results/export/rdms_rsatoolbox.h5",
    log:
        "results/logs/export_rsatoolbox/export_rsatoolbox.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        code=code_digest("export_rsatoolbox"),
        measure=config["rdm"]["metric"],
    script:
        "../../scripts/export_rsatoolbox.py"
