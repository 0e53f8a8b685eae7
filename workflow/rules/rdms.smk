# One RDM per (metric, model, layer): every metric an analysis uses, the main one included.
rule rdm:
    input:
        activations=activations_path(),
    output:
        rdm_path(),
    log:
        "results/logs/rdm/{metric}/{model}/{layer}.log",
    benchmark:
        "results/benchmarks/rdm/{metric}/{model}/{layer}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=rdm_mem_mb,
        gpu=rsakernels.gpu_resource(config["rdm"], rsaschema.run_env(workflow), "rdm"),
    params:
        spec=rdm_spec,
        expect=layer_expectation,
        code=code_digest("rdm"),
    script:
        "../../scripts/rdm.py"


rule kernel:
    input:
        activations=activations_path(),
    output:
        kernel_path(),
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
        ids=external_ids,
        stimuli=STIMULI,
    output:
        external_rdm_path(),
    log:
        "results/logs/external_rdm/{name}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        spec=external_rdm_spec,
        code=code_digest("external_rdm"),
    script:
        "../../scripts/external_rdm.py"
