rule effective_config:
    output:
        report(
            EFFECTIVE_CONFIG,
            caption="../report/config.rst",
            category="Configuration",
        ),
    log:
        "results/logs/effective_config/effective_config.log",
    # Quick plotting/IO: runs on the submitting machine, never as a cluster job.
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        code=code_digest("effective_config"),
        spec=effective_config_spec,
    script:
        "../../scripts/effective_config.py"
