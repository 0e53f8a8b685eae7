rule rdm:
    input:
        activations="results/activations/{model}",
    output:
        "results/{rdm_dir}/{model}/{layer}.h5",
    log:
        "results/logs/rdm/{rdm_dir}/{model}/{layer}.log",
    benchmark:
        "results/benchmarks/rdm/{rdm_dir}/{model}/{layer}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=rdm_mem_mb,
    params:
        spec=rdm_spec,
        expect=layer_expectation,
        code=code_digest("rdm"),
    script:
        "../../scripts/rdm.py"


rule kernel:
    input:
        activations="results/activations/{model}",
    output:
        "results/kernels/{kernel}/{model}/{layer}.h5",
    log:
        "results/logs/kernel/{kernel}/{model}/{layer}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=kernel_mem_mb,
    params:
        spec=kernel_spec,
        expect=layer_expectation,
        code=code_digest("kernel"),
    script:
        "../../scripts/kernel.py"


rule external_rdm:
    input:
        rdm=external_path,
        stimuli="results/stimuli/stimuli.h5",
    output:
        "results/external/{name}.h5",
    log:
        "results/logs/external_rdm/{name}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        spec=lambda wildcards: rsacfg.dumps(EXTERNAL[wildcards.name]),
        code=code_digest("external_rdm"),
    script:
        "../../scripts/external_rdm.py"
