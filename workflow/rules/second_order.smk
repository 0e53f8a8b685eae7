rule second_order:
    input:
        rdms=rdm_files(),
        code=library_files("second_order"),
    output:
        h5="results/second_order/matrix.h5",
        tsv="results/second_order/matrix.tsv",
    log:
        "results/logs/second_order/second_order.log",
    benchmark:
        "results/benchmarks/second_order/second_order.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=second_order_mem_mb,
    params:
        spec=slice_json("compare"),
    script:
        "../../scripts/second_order.py"
