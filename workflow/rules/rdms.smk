rule rdm:
    input:
        activations="results/activations/{model}/{layer}.h5",
        code=library_files("rdm"),
    output:
        "results/rdms/{model}/{layer}.h5",
    log:
        "results/logs/rdm/{model}/{layer}.log",
    benchmark:
        "results/benchmarks/rdm/{model}/{layer}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=rdm_mem_mb,
    params:
        spec=slice_json("rdm"),
    script:
        "../../scripts/rdm.py"
