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
        gpu=1 if lookup(dpath="extraction/gpu", within=config) else 0,
    params:
        spec=activation_spec,
    script:
        "../../scripts/activations.py"
