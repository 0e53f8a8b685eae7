"""Reading every RDM of an analysis together with the stimulus set they were computed on."""

from __future__ import annotations

from rsaflow.jobs.second_order import check_same_stimuli, read_rdm
from rsaflow.jobs.stimuli import read_stimuli


def rdms_on_stimuli(rdm_paths, stimuli_path) -> tuple[list[dict], dict]:
    """RDM records sorted by label, and the stimuli; refuses RDMs of another stimulus set."""
    records = sorted((read_rdm(p) for p in rdm_paths), key=lambda r: r["label"])
    stimuli = read_stimuli(stimuli_path)
    check_same_stimuli([{"digest": stimuli["digest"], "path": str(stimuli_path)}, *records])
    return records, stimuli
