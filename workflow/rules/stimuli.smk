rule stimuli:
    input:
        stimulus_inputs,
    output:
        stimuli=STIMULI,
        order=STIMULUS_ORDER,
    log:
        "results/logs/stimuli/stimuli.log",
    benchmark:
        "results/benchmarks/stimuli/stimuli.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        spec=stimuli_spec,
        images=STIMULUS_CONTENT,
        code=code_digest("stimuli"),
    script:
        "../../scripts/stimuli.py"


rule stimulus_grid:
    input:
        stimuli=STIMULI,
    output:
        report(
            figure_path("stimuli.png"),
            caption="../report/stimuli.rst",
            category="Stimuli",
        ),
        figure_path("stimuli.pdf"),
    log:
        "results/logs/stimulus_grid/stimulus_grid.log",
    # Quick plotting/IO: runs on the submitting machine, never as a cluster job.
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        code=code_digest("stimulus_grid"),
    script:
        "../../scripts/stimulus_grid.py"
