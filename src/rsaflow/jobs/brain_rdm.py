"""Rules ``brain_rdm`` and ``brain_group``: a subject's RDM from measured responses, and a region's group.

``brain_rdm`` writes ``results/brain/<region>/<subject>.h5`` (an RDM file, rsaflow.rdmfile; label
``brain/<region>/<subject>``): the responses and residuals read and checked (rsaflow.responses.io),
the noise precision (rsaflow.responses.noise), the RDM by the region's metric in the file's stimulus
order (rsaflow.responses.rdms), then put in the workflow's stimulus order. Reused by content: the key
holds the files' sha256, the stimulus ids, the region's settings and the code digest.
Peak memory: the responses (a memory map for .npy: one channel block, ``block_mb``, at a time under
``none``/``diag``; all of them as float64 under shrinkage) + the residuals + the precision (8 C B, or
about 3 x 8 C^2 B for shrinkage) + 4 x 8 N^2 B.

``brain_group`` writes ``results/brain/<region>.h5`` exactly as an external RDM group
(rsaflow.jobs.external_rdm): the mean of the subjects' dissimilarities plus dataset ``subjects``
(S, P), label ``brain/<region>``; the second order takes its noise ceilings from it.
"""

from __future__ import annotations

import logging

import numpy as np

from rsaflow import binding, h5io, rdmfile, store
from rsaflow.compare import DegenerateRDMError
from rsaflow.errors import InputFileError
from rsaflow.external import group_mean
from rsaflow.jobs.per_layer import write_rdm_file
from rsaflow.provenance import base_attrs, file_sha256
from rsaflow.responses import io
from rsaflow.responses.noise import NOISE, precision
from rsaflow.responses.rdms import RESPONSE_METRICS, response_rdm
from rsaflow.results import read_rdm, stimulus_ids

log = logging.getLogger(__name__)

#: The ``model`` attribute of brain RDM files: their label is ``brain/<region>`` (group) or
#: ``brain/<region>/<subject>``.
BRAIN = "brain"
FILES = ("responses", "mask", "residuals", "residuals_per_run")


def _subject_rdm(files: dict, region: dict, ids: list[str], where: str, unlabelled=None) -> np.ndarray:
    """The condensed RDM of one subject in the workflow's stimulus order. ``unlabelled()`` is called
    when the responses name no stimulus ids and the entry says ``order: stimuli`` (the binding check)."""
    metric, noise = RESPONSE_METRICS[region["metric"]], NOISE[region["noise"]]
    x, file_ids = io.read_responses(files["responses"], len(ids), files.get("mask"))
    if file_ids is None and files.get("order") == "stimuli" and unlabelled is not None:
        unlabelled()
    order = io.stimulus_order(files["responses"], file_ids, ids, files.get("order"), where)
    present = io.check_responses(files["responses"], x, file_ids or ids, unbalanced=region.get("unbalanced", False),
                                 min_runs=2 if metric.cross_validated else 1, where=where.rsplit(".subjects.", 1)[0])
    if present is not None and not metric.unbalanced:
        raise InputFileError(files["responses"], f"{int((~present).sum())} run/stimulus responses are missing and "
                             f"{metric.name} has no unbalanced form here; use "
                             f"{', '.join(m for m, r in RESPONSE_METRICS.items() if r.unbalanced)}")
    prec = _precision(files, region, x, present, where)
    if metric.counts and np.any(np.asarray(x).min() < 0):
        raise InputFileError(files["responses"], f"{metric.name} needs non-negative counts (spike counts)")
    log.info("%s: %d runs x %d stimuli x %d channels, metric %s, noise %s", where, *x.shape, metric.name,
             noise.name if metric.uses_noise else "none")
    rdm = response_rdm(x, metric.name, prec,
                       block_bytes=region["block_mb"] * 2**20, present=present, prior_lambda=region["prior_lambda"],
                       prior_weight=region["prior_weight"])
    square = np.zeros((len(ids), len(ids)))
    iu = np.triu_indices(len(ids), k=1)
    square[iu] = rdm
    square += square.T
    return rdmfile.upper_triangle(square[np.ix_(order, order)])


def _precision(files: dict, region: dict, x, present, where: str):
    """The subject's noise precision (rsaflow.responses.noise) from ``residuals``, or one per run from
    ``residuals_per_run`` (a list of R files; crossnobis of balanced runs, rsaflow.responses.rdms)."""
    metric, noise = RESPONSE_METRICS[region["metric"]], NOISE[region["noise"]]
    if not (metric.uses_noise and noise.needs_residuals):
        return precision("none")
    if "residuals_per_run" in files:
        paths = files["residuals_per_run"]
        if metric.per_run_noise is None or present is not None or len(paths) != x.shape[0]:
            raise InputFileError(paths[0], f"residuals_per_run: {len(paths)} files for {x.shape[0]} runs; one per run, "
                                           "for crossnobis of balanced runs (rsatoolbox's list of precisions)")
    elif "residuals" in files:
        paths = [files["residuals"]]
    else:
        raise InputFileError(files["responses"], f"noise {noise.name!r} needs residuals: add 'residuals:' at {where}")
    precs = []
    for path in paths:
        res = io.read_residuals(path, x.shape[2], files.get("mask"))
        try:
            precs.append(precision(noise.name, res, region.get("dof")))
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise InputFileError(path, f"noise {noise.name!r}: {exc}") from None
        if not precision_fits(precs[-1]):
            raise InputFileError(path, "noise precision is not finite")
    return precs if "residuals_per_run" in files else precs[0]


def precision_fits(prec) -> bool:
    """Whether a precision holds only finite values."""
    arr = prec.full if prec.full is not None else prec.diag
    return arr is None or bool(np.isfinite(arr).all())


def write_brain_rdm(files: dict, stimuli_path, out_path, region_name: str, subject: str, spec: dict, code) -> bool:
    """A subject's RDM file from its responses. ``files``: the subject's config entry (paths, ``order``);
    ``spec``: the region's settings (metric, noise, dof, prior_lambda, prior_weight, block_mb)."""
    with h5io.open_artifact(stimuli_path, "stimuli") as f:
        digest = f.attrs["digest"]
    ids = stimulus_ids(stimuli_path)
    where = f"brain.{region_name}.subjects.{subject}"
    shas = {k: [file_sha256(f) for f in files[k]] if isinstance(files[k], list) else file_sha256(files[k])
            for k in FILES if k in files}
    attrs = {**base_attrs({**spec, "files": files}, code), "model": BRAIN, "layer": f"{region_name}/{subject}",
             "node_index": -1, "stimulus_digest": digest, "metric": spec["metric"], "noise": spec["noise"],
             "sources": files}
    # By content: the files' bytes, not their paths or the subject's name; every setting of the region.
    key = store.make_key("brain_rdm", {"files": shas, "stimuli_ids": ids, "order": files.get("order")},
                         {**{k: v for k, v in attrs.items() if k not in ("config", "sources", "layer")},
                          "region_settings": spec})

    def bind():  # order: stimuli ties id-less responses to this stimulus set (rsaflow.binding)
        binding.check_or_bind(f"{where}.responses", files["responses"], shas["responses"], str(digest))

    def compute():
        write_rdm_file(out_path, _subject_rdm(files, spec, ids, where, bind), {**attrs, "content_key": key},
                       files["responses"])

    return store.produce("brain_rdm", key, out_path, compute)


def write_brain_group(subject_paths, out_path, region_name: str, code) -> None:
    """The region's group file from its subjects' RDM files (in ``subject_paths`` order)."""
    records = [read_rdm(p) for p in subject_paths]
    digests = {r["digest"] for r in records}
    if len(digests) != 1:
        raise InputFileError(subject_paths[0], "the subjects' RDMs are of different stimulus sets")
    uppers = np.stack([r["condensed"] for r in records])
    attrs = {**base_attrs({"subjects": [r["layer"] for r in records]}, code), "model": BRAIN, "layer": region_name,
             "node_index": -1, "stimulus_digest": digests.pop(), "metric": "brain", "n_subjects": uppers.shape[0]}
    try:
        rdmfile.write(out_path, group_mean(uppers), attrs, extra={"subjects": uppers})
    except DegenerateRDMError as exc:
        raise InputFileError(subject_paths[0], f"brain/{region_name}: the group's mean RDM: {exc}") from None
