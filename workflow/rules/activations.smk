rule activations:
    input:
        stimuli="results/stimuli/stimuli.h5",
        checkpoint=checkpoint_input,
        code=library_files("activations"),
    output:
        "results/activations/{model}/{layer}.h5",
    log:
        "results/logs/activations/{model}/{layer}.log",
    benchmark:
        "results/benchmarks/activations/{model}/{layer}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: lookup(dpath="extraction/threads", within=config)
    resources:
        mem_mb=lookup(dpath="extraction/mem_mb", within=config),
        gpu=rsaschema.gpu_resource(config["extraction"], rsaschema.run_env(workflow)),
    params:
        spec=activation_spec,
    script:
        "../../scripts/activations.py"
