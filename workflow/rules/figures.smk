rule rdm_figure:
    input:
        rdms=rdm_files(),
        stimuli="results/stimuli/stimuli.h5",
        code=library_files("figures"),
    output:
        report(
            "results/figures/rdms.png",
            caption="../report/rdms.rst",
            category="RDMs",
        ),
    log:
        "results/logs/rdm_figure/rdm_figure.log",
    # Quick plotting/IO: runs on the submitting machine, never as a cluster job.
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=rdm_mem_mb,
    script:
        "../../scripts/rdm_figure.py"


rule second_order_figure:
    input:
        matrix="results/second_order/matrix.h5",
        code=library_files("figures"),
    output:
        report(
            "results/figures/second_order.png",
            caption="../report/second_order.rst",
            category="Second order",
        ),
    log:
        "results/logs/second_order_figure/second_order_figure.log",
    # Quick plotting/IO: runs on the submitting machine, never as a cluster job.
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    script:
        "../../scripts/second_order_figure.py"


rule mds_figure:
    input:
        matrix="results/second_order/matrix.h5",
        code=library_files("figures"),
    output:
        report(
            "results/figures/mds.png",
            caption="../report/mds.rst",
            category="Second order",
        ),
    log:
        "results/logs/mds_figure/mds_figure.log",
    # Quick plotting/IO: runs on the submitting machine, never as a cluster job.
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        spec=slice_json("figures"),
    script:
        "../../scripts/mds_figure.py"
