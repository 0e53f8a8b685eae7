# One second-order matrix per analysis (config.MAIN, "main", is rdm + compare).
rule second_order:
    input:
        rdms=second_order_inputs,
    output:
        h5=second_order_path("matrix.h5"),
        tsv=second_order_path("matrix.tsv"),
        inference=second_order_path("inference.tsv"),
        pairs=second_order_path("pairs.h5"),
    log:
        "results/logs/second_order/{analysis}.log",
    benchmark:
        "results/benchmarks/second_order/{analysis}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=second_order_mem_mb,
    params:
        spec=second_order_spec,
        code=code_digest("second_order"),
    script:
        "../../scripts/second_order.py"
