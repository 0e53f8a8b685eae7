"""Rule ``external_rdm``: an RDM from a file (e.g. brain data), checked against the stimulus set.

A group (several subjects' RDMs of one region; rsaflow.external.load_external_group) is written
as the RDM file of its mean RDM (rsaflow.external.group_mean: the arithmetic mean of the subjects'
dissimilarities), which joins the comparison, plus dataset ``subjects`` (S, P) float64: each
subject's upper triangle in squareform order, for the noise ceilings of the second order
(attribute ``n_subjects``). Peak memory about 8 S N^2 + 4 x 8 P bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from rsaflow import binding, filedigest, h5io, rdmfile, store
from rsaflow.compare import DegenerateRDMError
from rsaflow.errors import ConfigError, InputFileError, RsaflowError
from rsaflow.external import (
    MissingIdsError,
    carries_ids,
    group_mean,
    is_group_file,
    load_external_group,
    load_external_rdm,
    read_ids,
)
from rsaflow.jobs.per_layer import product_log, write_rdm_file
from rsaflow.provenance import base_attrs, file_sha256
from rsaflow.results import stimulus_ids

log = logging.getLogger(__name__)


def _sources(rdm_paths, spec: dict) -> tuple[list[str], bool]:
    """The files as a list, and whether they form a group (``paths:``, or one group file)."""
    files = [str(rdm_paths)] if isinstance(rdm_paths, (str, os.PathLike)) else [str(p) for p in rdm_paths]
    return files, "paths" in spec or is_group_file(files[0])


def _write_group(out_path, subjects: np.ndarray, attrs: dict, source) -> None:
    iu = np.triu_indices(subjects.shape[1], k=1)
    uppers = np.ascontiguousarray(subjects[:, iu[0], iu[1]])
    try:
        rdmfile.write(out_path, group_mean(subjects)[iu], {**attrs, "n_subjects": uppers.shape[0]},
                      extra={"subjects": uppers})
    except DegenerateRDMError as exc:
        raise InputFileError(source, f"the group's mean RDM: {exc}") from None


def _entry_key(name: str, spec: dict, files: list[str], path) -> str:
    """The config key of one file of an entry: ``external_rdms.<name>.path`` or ``.paths[i]``."""
    if "paths" not in spec:
        return f"external_rdms.{name}.path"
    return f"external_rdms.{name}.paths[{files.index(str(path)) if str(path) in files else 0}]"


def _bind_unlabelled(name: str, spec: dict, files: list[str], shas: list[str], digest: str) -> None:
    """``order: stimuli``: tie each file without ids to the stimulus set (rsaflow.binding)."""
    for path, sha in zip(files, shas):
        if not carries_ids(path):
            if binding.check_or_bind(_entry_key(name, spec, files, path), path, sha, digest):
                log.info("%s: no stimulus ids, order: stimuli; bound to stimulus set %s (rsaflow.binding)", path,
                         digest[:12])


def stimulus_set(stimuli_path) -> tuple[int, str, list[str]]:
    """N, the stimulus digest and the stimulus ids of the stimulus file."""
    with h5io.open_artifact(stimuli_path, "stimuli") as f:
        n = f["images"].shape[0]
        digest = f.attrs["digest"]
    return n, digest, stimulus_ids(stimuli_path)


def write_external(rdm_paths, stimuli_path, out_path, name: str, spec: dict, code,
                   stimset: tuple | None = None, digests: dict | None = None) -> bool:
    """Check an external RDM (or group) against the stimulus set and store it as an rsaflow RDM
    ``external/<name>`` (a group: its mean RDM and dataset ``subjects``). A file without stimulus
    ids needs ``ids:`` or ``order: stimuli`` in ``spec`` (then it is bound to the stimulus set).
    ``stimset``: :func:`stimulus_set` of ``stimuli_path``, when the caller read it already;
    ``digests``: ``{path: sha256 of its bytes}`` of files the caller hashed already."""
    n, digest, ids = stimset or stimulus_set(stimuli_path)
    files, group = _sources(rdm_paths, spec)
    sha = (digests or {}).get
    shas = [sha(p) or file_sha256(p) for p in files]
    attrs = {
        **base_attrs(spec, code),
        "model": "external",
        "layer": name,
        "node_index": -1,
        "stimulus_digest": digest,
        "metric": "external",
        "external_path": files[0] if len(files) == 1 else json.dumps(files),
        "external_sha256": shas[0] if len(shas) == 1 else hashlib.sha256("\n".join(shas).encode()).hexdigest(),
    }
    row_ids = read_ids(spec["ids"]) if spec.get("ids") else None
    if row_ids is not None:
        attrs["ids_sha256"] = sha(str(spec["ids"])) or file_sha256(spec["ids"])
    require = spec.get("order") != "stimuli"
    if not require and row_ids is None:
        _bind_unlabelled(name, spec, files, shas, digest)
    key = store.make_key("external", {"file": attrs["external_sha256"], "stimuli_ids": ids, "group": group}, attrs)

    def compute():
        if group:
            rdms = load_external_group(files if "paths" in spec else files[0], n, ids, row_ids, require)
            _write_group(out_path, rdms, {**attrs, "content_key": key}, files[0])
        else:
            # its own array: the triangle and the ranks go into its memory (rsaflow.rdmfile)
            condensed, spare = rdmfile.upper_triangle_in_place(load_external_rdm(files[0], n, ids, row_ids, require))
            write_rdm_file(out_path, condensed, {**attrs, "content_key": key}, files[0], ranks_out=spare)

    try:
        return store.produce("external", key, out_path, compute)
    except MissingIdsError as exc:
        raise ConfigError(_entry_key(name, spec, files, exc.path), str(exc)) from None


def _entry_files(spec: dict):
    return spec["paths"] if "paths" in spec else spec["path"]


def _all_files(spec: dict) -> list:
    """An entry's RDM files and its ids file."""
    files = spec["paths"] if "paths" in spec else [spec["path"]]
    return [*files, spec["ids"]] if spec.get("ids") else list(files)


def write_externals(entries: dict, stimuli_path, out_paths: list, log_paths: list, code, threads: int = 1) -> int:
    """Rule ``external_rdm``: every entry of ``external_rdms`` (``entries``, name -> spec) written
    by :func:`write_external` to ``out_paths`` (in name order), each computed or reused from the
    store by its own key; what an entry logs also goes to its own file of ``log_paths``. Every
    entry is tried; if some fail, each failure is logged in its entry's log and the first is
    raised (naming its config key or file). ``threads``: entries handled at once. Returns how many
    entries were computed.

    The files' sha256s come from the workflow's digest cache (rsaflow.filedigest, filled when the
    DAG was built: the files are tracked by their content), each checked against the file's
    identity there, so a file is hashed again only if it changed since (or the cache is missing)."""
    names = sorted(entries)
    if not (len(names) == len(out_paths) == len(log_paths)):
        raise ValueError(f"{len(names)} entries, {len(out_paths)} outputs, {len(log_paths)} logs")
    stimset = stimulus_set(stimuli_path)
    files = [str(f) for name in names for f in _all_files(entries[name])]
    digests = filedigest.file_digests([f for f in files if os.path.isfile(f)], filedigest.CACHE_DIR)

    def one(name, out, log_path):
        with product_log(log_path):
            try:
                spec = entries[name]
                return write_external(_entry_files(spec), stimuli_path, out, name, spec, code, stimset,
                                      digests), None
            except RsaflowError as exc:
                log.error("%s", exc)
                return False, exc

    # Threads: loading, checking and ranking are mostly NumPy (the GIL released); entries are independent.
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        results = list(pool.map(one, names, out_paths, log_paths))
    computed = sum(bool(c) for c, _ in results)
    failed = [exc for _, exc in results if exc is not None]
    log.info("external RDMs: %d computed, %d reused, %d failed", computed, len(names) - computed - len(failed),
             len(failed))
    if failed:
        if len(failed) > 1:
            log.error("%d external RDMs failed; each one's log under results/logs/external_rdm/ says why",
                      len(failed))
        raise failed[0]
    return computed
