"""Figure steps: read artifacts, draw with :mod:`rsaflow.figures`.

RDMs are read only through :func:`rsaflow.jobs.second_order.read_rdm` (the one reader of RDM
files): first every file's label, model, depth and stimulus digest (no matrix), then the matrix of
each RDM a figure draws, one at a time. Peak memory of the RDM figures: about 3 N^2 float64 (one
RDM as stored, its sorted copy, the drawn block), independent of K.
"""

from __future__ import annotations

from rsaflow import figures, h5io
from rsaflow.jobs.second_order import check_same_stimuli, read_rdm, read_second_order


def _stimulus_meta(stimuli_path) -> dict:
    """Labels, class names and digest of a stimuli file (its images are not read)."""
    with h5io.open_artifact(stimuli_path, "stimuli") as f:
        return {
            "labels": f["labels"][()],
            "class_names": [c.decode() if isinstance(c, bytes) else c for c in f["class_names"][()]],
            "digest": f.attrs["digest"],
            "path": str(stimuli_path),
        }


def _rdm_records(rdm_paths, stimuli: dict) -> list[dict]:
    """Label, model, depth, digest and path of every RDM file; refuses RDMs of another stimulus set."""
    records = [read_rdm(p, with_matrix=False) for p in rdm_paths]
    check_same_stimuli([stimuli, *records])
    return records


def _load_rdm(record: dict):
    return read_rdm(record["path"])["rdm"]


def draw_stimulus_grid(stimuli_path, out_path) -> None:
    """The stimulus grid; reads only the images it draws."""
    with h5io.open_artifact(stimuli_path, "stimuli") as f:
        names = [c.decode() if isinstance(c, bytes) else c for c in f["class_names"][()]]
        figures.stimulus_grid(f["images"], f["labels"][()], names, out_path)


def draw_rdms(rdm_paths, stimuli_path, out_path) -> None:
    stimuli = _stimulus_meta(stimuli_path)
    figures.rdm_panel(_rdm_records(rdm_paths, stimuli), stimuli["labels"], out_path, load=_load_rdm)


def draw_stimulus_mds(rdm_paths, stimuli_path, out_path) -> None:
    stimuli = _stimulus_meta(stimuli_path)
    figures.stimulus_mds_panel(_rdm_records(rdm_paths, stimuli), stimuli["labels"], stimuli["class_names"],
                               out_path, load=_load_rdm)


def draw_second_order(second_order_path, out_path) -> None:
    figures.second_order_heatmap(read_second_order(second_order_path), out_path)


def draw_mds(second_order_path, out_path, seed: int) -> None:
    figures.mds_plot(read_second_order(second_order_path), seed, out_path)
