# Brain regions from measured responses (docs/brain.md): one RDM per (region, subject), then the
# region's group, which joins every RDM analysis as brain/<region> (common.smk: labelled_inputs).
rule brain_rdm:
    input:
        unpack(brain_subject_inputs),
        stimuli=STIMULI,
    output:
        brain_rdm_path(),
    log:
        "results/logs/brain_rdm/{region}/{subject}.log",
    benchmark:
        "results/benchmarks/brain_rdm/{region}/{subject}.tsv"
    wildcard_constraints:
        region=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
        subject=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    conda:
        "../../envs/analysis.yaml"
    threads: 2
    params:
        spec=brain_spec,
        files=brain_files_spec,
        code=code_digest("brain_rdm"),
    script:
        "../../scripts/brain_rdm.py"


rule brain_group:
    input:
        subjects=brain_subject_rdms,
    output:
        brain_group_path(),
    log:
        "results/logs/brain_group/{region}.log",
    wildcard_constraints:
        region=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        code=code_digest("brain_group"),
    script:
        "../../scripts/brain_group.py"
