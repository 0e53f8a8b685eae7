# One job per model: the stimuli go through the network once, and every configured layer of the
# model is streamed to its own file results/activations/{model}/{layer}.h5 (the folder is the output).
rule activations:
    input:
        stimuli=STIMULI,
        checkpoint=checkpoint_input,
    output:
        directory(activations_path()),
    log:
        "results/logs/activations/{model}.log",
    benchmark:
        "results/benchmarks/activations/{model}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["extraction"]["threads"]
    resources:
        mem_mb=config["extraction"]["mem_mb"],
        gpu=rsaschema.gpu_resource(config["extraction"], rsaschema.run_env(workflow)),
    params:
        spec=model_spec,
        code=code_digest("activations"),
    script:
        "../../scripts/activations.py"
