"""Reading every RDM of an analysis together with the stimulus set they were computed on.

RDM files are read through rsaflow.rdmfile.read_rdm, the one reader of the file format.
"""

from __future__ import annotations

from rsaflow.jobs.second_order import check_same_stimuli, read_rdm
from rsaflow.jobs.stimuli import read_stimuli


def rdms_on_stimuli(rdm_paths, stimuli_path, square: bool = True) -> tuple[list[dict], dict]:
    """RDM records (rsaflow.rdmfile.read_rdm; ``rdm`` the square matrix unless ``square=False``)
    sorted by label, and the stimuli; refuses RDMs of another stimulus set."""
    records = sorted((read_rdm(p, with_matrix=square) for p in rdm_paths), key=lambda r: r["label"])
    stimuli = read_stimuli(stimuli_path)
    check_same_stimuli([{"digest": stimuli["digest"], "path": str(stimuli_path)}, *records])
    return records, stimuli
