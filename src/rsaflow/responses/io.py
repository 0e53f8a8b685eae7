"""Reading and checking a subject's responses, ROI mask and residuals (every problem one InputFileError line).

Responses, one subject and region: R runs x N stimuli x C channels.

- ``.npy``: a 3-D array (runs, N, channels), memory-mapped (channels are then read in blocks,
  rsaflow.responses.rdms). No stimulus ids.
- ``.npz``: array ``responses`` (runs, N, channels) and optional ``stimulus_ids`` (N strings or ints).
- ``.h5`` / ``.hdf5``: dataset ``responses`` and optional dataset ``stimulus_ids``.
- ``.nii`` / ``.nii.gz`` (needs nibabel: ``pip install rsaflow[brain]``): a 4-D image of per-run,
  per-stimulus betas, volumes **run-major**: volume ``v = r N + i`` is run r's beta of stimulus i
  (N = the workflow's stimuli, in results/stimuli/order.tsv order), plus a 3-D ROI ``mask`` of the
  same spatial shape whose non-zero voxels are the channels (in C order of ``mask != 0``). No ids.

Residuals, for the noise estimate: (T, channels) as ``.npy``, ``.npz`` (array ``residuals``),
``.h5`` (dataset ``residuals``), or a 4-D NIfTI of T volumes read under the same mask.

Stimulus ids are matched as strings against the workflow's (rsaflow.results.stimulus_ids) and the
stimuli put in its order (:func:`stimulus_order`). A file without ids is refused unless the subject's
entry says ``order: stimuli`` (its stimuli follow results/stimuli/order.tsv), the rule external RDM
files follow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rsaflow.errors import InputFileError

NIFTI = (".nii", ".nii.gz")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _nibabel(path):
    try:
        import nibabel
    except ImportError:
        raise InputFileError(path, "NIfTI input needs nibabel: pip install 'rsaflow[brain]'") from None
    return nibabel


def read_mask(path, volume_shape: tuple) -> np.ndarray:
    """The ROI's boolean mask (3-D), checked against the image's spatial shape."""
    img = _nibabel(path).load(str(path))
    mask = np.asarray(img.dataobj)
    if mask.ndim == 4 and mask.shape[3] == 1:
        mask = mask[..., 0]
    if mask.shape != tuple(volume_shape):
        raise InputFileError(path, f"mask of shape {mask.shape} but the image's volumes are {tuple(volume_shape)}: "
                                   "use a mask in the same space (resample it to the betas)")
    mask = mask != 0
    if not mask.any():
        raise InputFileError(path, "mask selects no voxel (all zero)")
    return mask


def _read_nifti(path: Path, mask_path) -> np.ndarray:
    """(V, C) float64: each volume's masked voxels, read one volume at a time."""
    img = _nibabel(path).load(str(path))
    if len(img.shape) != 4:
        raise InputFileError(path, f"a NIfTI of betas/residuals must be 4-D (x, y, z, volumes), got shape {img.shape}")
    if mask_path is None:
        raise InputFileError(path, "a NIfTI input needs a 'mask:' (the ROI, a 3-D NIfTI in the same space)")
    mask = read_mask(mask_path, img.shape[:3])
    out = np.empty((img.shape[3], int(mask.sum())))
    for v in range(img.shape[3]):
        out[v] = np.asarray(img.dataobj[..., v], dtype=np.float64)[mask]
    return out


def _read_array(path: Path, dataset: str) -> tuple[np.ndarray, list | None]:
    suffix = _suffix(path)
    ids = None
    if suffix == ".npy":
        try:
            x = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InputFileError(path, f"not a readable .npy array: {exc}") from None
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            if dataset not in z:
                raise InputFileError(path, f"array {dataset!r} missing (found: {sorted(z)})")
            x = z[dataset]
            ids = z["stimulus_ids"].tolist() if "stimulus_ids" in z else None
    elif suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as f:
            if dataset not in f:
                raise InputFileError(path, f"dataset {dataset!r} missing (found: {sorted(f)})")
            x = f[dataset][()]
            ids = np.atleast_1d(f["stimulus_ids"][()]).tolist() if "stimulus_ids" in f else None
    else:
        raise InputFileError(path, f"unknown file type {suffix!r}; use .npy, .npz, .h5, .hdf5, .nii or .nii.gz")
    if x.dtype.kind not in "biuf":
        raise InputFileError(path, f"expected a numeric array, got dtype {x.dtype}")
    ids = None if ids is None else [s.decode() if isinstance(s, bytes) else str(s) for s in ids]
    return x, ids


def read_responses(path, n_stimuli: int, mask=None) -> tuple[np.ndarray, list | None]:
    """(R, N, C) responses (a memory map for .npy) and the file's stimulus ids (None: none named)."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "file not found")
    if _suffix(path) in NIFTI:
        flat = _read_nifti(path, mask)
        if flat.shape[0] % n_stimuli:
            raise InputFileError(path, f"{flat.shape[0]} volumes are no whole number of runs of {n_stimuli} "
                                       "stimuli (volumes run-major: run r, stimulus i at r N + i)")
        return flat.reshape(flat.shape[0] // n_stimuli, n_stimuli, flat.shape[1]), None
    x, ids = _read_array(path, "responses")
    if x.ndim != 3:
        raise InputFileError(path, f"responses must be (runs, stimuli, channels), got shape {x.shape}")
    if x.shape[1] != n_stimuli:
        raise InputFileError(path, f"responses hold {x.shape[1]} stimuli but the workflow has {n_stimuli}")
    if ids is not None and len(ids) != n_stimuli:
        raise InputFileError(path, f"{len(ids)} stimulus_ids for {n_stimuli} stimuli")
    return x, ids


def read_residuals(path, n_channels: int, mask=None) -> np.ndarray:
    """(T, C) float64 residuals, C checked against the responses' channels."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "file not found")
    res = _read_nifti(path, mask) if _suffix(path) in NIFTI else np.asarray(_read_array(path, "residuals")[0], float)
    if res.ndim != 2:
        raise InputFileError(path, f"residuals must be (time points, channels), got shape {res.shape}")
    if res.shape[1] != n_channels:
        raise InputFileError(path, f"residuals have {res.shape[1]} channels but the responses have {n_channels}: "
                                   "use residuals of the same voxels (the same mask)")
    if not np.isfinite(res).all():
        bad = np.flatnonzero(~np.isfinite(res).all(axis=0))
        raise InputFileError(path, f"residuals are NaN or Inf in {bad.size} channels (first: {bad[:5].tolist()}): "
                                   "remove those voxels from the mask")
    return res


def check_responses(path, x: np.ndarray, ids: list[str], block_bytes: int = 64 * 2**20, unbalanced: bool = False,
                    min_runs: int = 1, where: str = "brain.<region>") -> np.ndarray | None:
    """Every channel finite and, unless ``unbalanced``, every (run, stimulus) present, read in channel blocks.

    ``ids``: the stimuli's ids in the file's order, for the message. A (run, stimulus) whose channels
    are all NaN is a missing stimulus: refused by default (rsatoolbox's cross-validation folds are
    runs); with ``unbalanced`` allowed, as long as every stimulus is in ``min_runs`` runs (2 for the
    cross-validated metrics), and the (R, N) bool ``present`` is returned (None when none is missing).
    A channel with a NaN or Inf in a present response is a bad voxel.
    """
    r, n, c = x.shape
    finite_count = np.zeros((r, n), dtype=np.int64)
    nonfinite = np.zeros(c, dtype=np.int64)
    step = max(1, block_bytes // (8 * r * n))
    for lo in range(0, c, step):
        ok = np.isfinite(np.asarray(x[:, :, lo : lo + step]))
        finite_count += ok.sum(axis=2)
        nonfinite[lo : lo + step] = r * n - ok.sum(axis=(0, 1))
    missing = np.argwhere(finite_count == 0)
    if missing.size and not unbalanced:
        run, stim = missing[0]
        raise InputFileError(path, f"run {run} has no response for stimulus {ids[stim]!r} ({len(missing)} missing "
                                   "run/stimulus pairs): every run must hold every stimulus; drop the run or the "
                                   f"stimulus, or set unbalanced: true at {where} (rsatoolbox's calc_rdm_unbalanced)")
    bad_channels = np.flatnonzero(nonfinite > len(missing)).tolist()  # a missing response is NaN in every channel
    if bad_channels:
        raise InputFileError(path, f"{len(bad_channels)} channels (voxels) are NaN or Inf in some run or stimulus "
                                   f"(first channels: {bad_channels[:5]}): remove them from the mask")
    if not missing.size:
        return None
    present = finite_count > 0
    runs = present.sum(axis=0)
    if np.any(runs < min_runs):
        stim = int(np.flatnonzero(runs < min_runs)[0])
        raise InputFileError(path, f"stimulus {ids[stim]!r} has a response in {int(runs[stim])} run(s); "
                                   f"an unbalanced design needs each stimulus in at least {min_runs}")
    return present


def stimulus_order(path, file_ids: list | None, stimulus_ids: list[str], order: str | None, where: str) -> np.ndarray:
    """Index into the file's stimuli for each workflow stimulus (``where``: the config key, for the message)."""
    if file_ids is None:
        if order == "stimuli":
            return np.arange(len(stimulus_ids))
        raise InputFileError(path, "names no stimulus ids: add 'stimulus_ids' (N ids, those of results/stimuli/"
                                   f"order.tsv) to the file, or set 'order: stimuli' at {where} if its stimuli "
                                   "follow results/stimuli/order.tsv")
    if len(set(file_ids)) != len(file_ids):
        raise InputFileError(path, "duplicate stimulus ids in the file")
    pos = {s: i for i, s in enumerate(file_ids)}
    unknown = [s for s in file_ids if s not in set(stimulus_ids)]
    if unknown:
        raise InputFileError(path, f"{len(unknown)} stimulus ids are not in the stimulus set (first: {unknown[:5]}); "
                                   "ids are those of results/stimuli/order.tsv")
    return np.array([pos[s] for s in stimulus_ids])


def file_shape(path, dataset: str, mask=None) -> tuple[tuple, int, bool] | None:
    """From the header only: (shape, bytes per value once read, memory-mapped) of a responses
    (``dataset`` ``responses``) or residuals file; a NIfTI as (volumes, mask voxels), read as float64
    (the mask is read to count its voxels). None when the file cannot be read (its job says why)."""
    path = Path(path)
    suffix = _suffix(path)
    try:
        if suffix == ".npy":
            x = np.load(path, mmap_mode="r", allow_pickle=False)
            return x.shape, x.dtype.itemsize, True
        if suffix == ".npz":
            import zipfile

            with zipfile.ZipFile(path) as z, z.open(f"{dataset}.npy") as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f)
            return shape, np.dtype(dtype).itemsize, False
        if suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                return f[dataset].shape, f[dataset].dtype.itemsize, False
        if suffix in NIFTI and mask is not None:
            import nibabel

            volumes = nibabel.load(str(path)).shape[3]
            return (volumes, int(np.count_nonzero(np.asarray(nibabel.load(str(mask)).dataobj)))), 8, False
    except Exception:  # noqa: BLE001 - unreadable here: the job reports it in one line
        return None
    return None


def rdm_job_bytes(files: dict, region: dict, n_stimuli: int) -> int | None:
    """Peak bytes of numpy arrays of one brain_rdm job (rsaflow.jobs.brain_rdm) from the files' headers;
    None when a header cannot be read. Held throughout: the responses as read (nothing for a ``.npy``,
    memory-mapped: its pages are the page cache's), then the largest of three phases:

    - the noise estimate: the residuals as float64 (nothing more for a float64 ``.npy``), its copies and
      C x C matrices (the NOISE record's ``tc_arrays``, ``c2_arrays``) and two C-vectors;
    - the check of every value (check_responses): the finite flags of one 64 MB block;
    - the RDM: the precision (8 C, or 8 C^2 for a full one; one per run with ``residuals_per_run``, and
      4 x 8 C^2 for a pair's), channel blocks of ``block_mb`` as float64
      and (1 + 3 / R) blocks of sums (all channels at once under a full precision), 4 N x N float64
      (kernel, square RDM, reordering; poisson_cv one kernel per run more);

    and 1 MB of small arrays.

    Checked against tracemalloc peaks in tests/test_responses_io.py (the rule adds 300 MB of
    interpreter and libraries, workflow/rules/brain.smk)."""
    from rsaflow.responses.noise import NOISE
    from rsaflow.responses.rdms import RESPONSE_METRICS

    metric, noise = RESPONSE_METRICS[region["metric"]], NOISE[region["noise"]]
    head = file_shape(files["responses"], "responses", files.get("mask"))
    if head is None or len(head[0]) not in (2, 3):
        return None
    shape, itemsize, mapped = head
    if len(shape) == 2:  # NIfTI volumes, run-major
        shape = (max(1, shape[0] // n_stimuli), n_stimuli, shape[1])
    r, n, c = shape
    full = metric.uses_noise and noise.full
    data = 8 * r * n * c
    block = data if full else min(data, region["block_mb"] * 2**20)
    rdm_phase = (1 + 3 / r) * block + 4 * 8 * n * n + (8 * r * n * n if metric.per_fold_kernels else 0)
    noise_phase = 0
    per_run = files.get("residuals_per_run")
    if metric.uses_noise and noise.needs_residuals and ("residuals" in files or per_run):
        res = file_shape(per_run[0] if per_run else files["residuals"], "residuals", files.get("mask"))
        if res is None:
            return None
        (t, _), res_itemsize, res_mapped = res
        rdm_phase += (8 * c * c if full else 8 * c) * (len(per_run) if per_run else 1)
        if per_run and full:  # a pair's precision: two inverses, their mean and its inverse
            rdm_phase += 4 * 8 * c * c
        noise_phase = (0 if res_mapped and res_itemsize == 8 else 8 * t * c) + 8 * t * c * noise.tc_arrays
        noise_phase += 8 * c * c * noise.c2_arrays + 2 * 8 * c
    check_phase = min(r * n * c, 8 * 2**20)  # check_responses: finite flags of 64 MB blocks
    small = 2**20  # ids, orders, per-stimulus counts
    return int((0 if mapped else itemsize * r * n * c) + max(rdm_phase, noise_phase, check_phase) + small)
