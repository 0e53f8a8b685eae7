rule second_order:
    input:
        rdms=second_order_inputs,
    output:
        h5="results/{so_dir}/matrix.h5",
        tsv="results/{so_dir}/matrix.tsv",
        inference="results/{so_dir}/inference.tsv",
        pairs="results/{so_dir}/pairs.h5",
    log:
        "results/logs/second_order/{so_dir}.log",
    benchmark:
        "results/benchmarks/second_order/{so_dir}.tsv"
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
