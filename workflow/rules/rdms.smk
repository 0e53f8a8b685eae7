# The RDMs of every metric an analysis uses, the main one included. rdm.jobs: model (the default)
# runs one job per (metric, model) for all its layers (issue 22 item 5: a job's start-up and
# bookkeeping, ~0.6 s, was most of a small RDM's cost; a model's RDM jobs rerun together anyway,
# since its extraction rewrites every layer file); rdm.jobs: layer one job per (metric, model,
# layer), as before, for large N where one model's layers should run in parallel. Either way each
# layer's product is looked up in the store by its own key. Paths and logs are the same.
if config["rdm"]["jobs"] == "layer":

    rule rdm:
        input:
            activations=activations_path(),
        output:
            rdm_path(),
        log:
            rdm_log(),
        benchmark:
            "results/benchmarks/rdm/{metric}/{model}/{layer}.tsv"
        conda:
            "../../envs/analysis.yaml"
        threads: 2
        resources:
            mem_mb=rdm_mem_mb,
            gpu=rsakernels.gpu_resource(
                config["rdm"], rsaschema.run_env(workflow), "rdm"
            ),
        params:
            spec=rdm_spec,
            expect=layer_expectations,
            code=code_digest("rdm"),
        script:
            "../../scripts/rdm.py"

else:
    # One rule per model (its layers are its outputs); named rdm__<model>.
    for _model, _layers in model_layers().items():

        rule:
            name:
                f"rdm__{_model}"
            input:
                activations=activations_path(_model),
            output:
                [rdm_path("{metric}", _model, _l) for _l in _layers],
            log:
                [f"results/logs/rdm/{{metric}}/{_model}.log"]
                + [rdm_log("{metric}", _model, _l) for _l in _layers],
            benchmark:
                f"results/benchmarks/rdm/{{metric}}/{_model}.tsv"
            conda:
                "../../envs/analysis.yaml"
            threads: 2
            resources:
                mem_mb=rdm_mem_mb,
                gpu=rsakernels.gpu_resource(
                    config["rdm"], rsaschema.run_env(workflow), "rdm"
                ),
            params:
                spec=rdm_spec,
                expect=model_expectations(_model),
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


# One job for every external RDM of the config (issue 22 item 5: a job's ~0.6 s of start-up and
# bookkeeping was most of an external RDM's cost): each entry's product is still looked up in the
# store by its own key, so changing one entry recomputes that one and hard-links the others.
# The files are tracked by their content (params.content), not as inputs, as the stimulus folder.
if EXTERNAL:

    rule external_rdm:
        input:
            stimuli=STIMULI,
        output:
            external_files(),
        log:
            external_logs(),
        conda:
            "../../envs/analysis.yaml"
        threads: 2
        params:
            spec=external_rdm_spec,
            content=external_content,
            code=code_digest("external_rdm"),
        script:
            "../../scripts/external_rdm.py"
