"""What the per-stimulus figures of RDMs read (rules ``rdm_figure`` and ``stimulus_mds_figure``).

RDMs are read only through :func:`rsaflow.results.read_rdm` (the one reader of RDM
files): first every file's label, model, depth and stimulus digest (no matrix), then the matrix of
each RDM a figure draws, one at a time (:func:`load_rdm`, or for the RDM panel
:func:`load_percentiles`). Peak memory: about 3 N^2 float64 for the first-order MDS (one RDM as
stored, its square), N^2 for the RDM panel (values and ranks of the triangle), independent of K.
"""

from __future__ import annotations

from rsaflow.figure_data import percentiles_from_ranks
from rsaflow.results import check_same_stimuli, read_meta, read_rdm, read_stimuli


def stimulus_meta(stimuli_path) -> dict:
    """Labels, class names, indices and digest of a stimuli file (rsaflow.results.read_stimuli; its
    images are not read)."""
    return read_stimuli(stimuli_path, images=False)


def rdm_records(rdm_paths, stimuli: dict) -> list[dict]:
    """Label, model, depth, digest and path of every RDM file; refuses RDMs of another stimulus set."""
    records = [read_meta(p) for p in rdm_paths]
    check_same_stimuli([stimuli, *records])
    return records


def load_rdm(record: dict):
    """The square RDM of a record of :func:`rdm_records`."""
    return read_rdm(record["path"], square=True)["rdm"]


def load_percentiles(record: dict, rows):
    """The percentile block of the drawn ``rows`` of a record's RDM, from its stored ranks
    (:func:`rsaflow.figure_data.percentiles_from_ranks`: no square, no N^2 sort; 2 x 8 P bytes)."""
    rdm = read_rdm(record["path"], ranks=True)
    return percentiles_from_ranks(rdm["condensed"], rdm["ranks"], rows)
