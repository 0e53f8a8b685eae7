# One second-order matrix per analysis (config.MAIN, "main", is rdm + compare).
rule second_order:
    input:
        rdms=second_order_inputs,
        tiles=tile_files,
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
        gpu=rsakernels.gpu_resource(
            config["second_order"], rsaschema.run_env(workflow), "second_order"
        ),
    params:
        spec=second_order_spec,
        code=code_digest("second_order"),
    script:
        "../../scripts/second_order.py"


# One tile (blocks i <= j) of an analysis split by compare.tiles; second_order assembles them.
rule second_order_tile:
    input:
        unpack(tile_inputs),
    output:
        second_order_path("tiles/{i}_{j}.h5"),
    log:
        "results/logs/second_order_tile/{analysis}/{i}_{j}.log",
    benchmark:
        "results/benchmarks/second_order_tile/{analysis}/{i}_{j}.tsv"
    wildcard_constraints:
        i=r"\d+",
        j=r"\d+",
    conda:
        "../../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=tile_mem_mb,
        gpu=rsakernels.gpu_resource(
            config["second_order"], rsaschema.run_env(workflow), "second_order"
        ),
    params:
        spec=tile_spec,
        code=code_digest("second_order_tile"),
    script:
        "../../scripts/second_order_tile.py"
