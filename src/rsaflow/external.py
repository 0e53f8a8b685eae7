"""External RDMs (brain data, behaviour, model RDMs from elsewhere) read and checked for comparison.

Accepted files, all one RDM of N stimuli:

- ``.npy``: an (N, N) matrix, or the condensed upper triangle of length N (N - 1) / 2
  (row-major, diagonal excluded: ``scipy.spatial.distance.squareform`` order). No stimulus ids.
- ``.csv`` / ``.tsv``: the square matrix as text (comma / tab separated), optionally with a header
  row of stimulus ids and/or a first column of stimulus ids. A row (column) is taken as ids when
  any of its cells is not a number (an empty corner cell counts), or, for all-numeric ids, when
  the numbers form N + 1 rows (columns) around an N x N matrix. When both are present they must
  agree. A header with one cell more than the matrix has columns has a corner cell, ignored.
- ``.h5`` / ``.hdf5``: dataset ``rdm`` ((N, N) or condensed) and optional dataset
  ``stimulus_ids`` (strings or integers).

Checks, each an InputFileError naming the file: finite; square; N equal to ``n_stimuli``;
symmetric within 1e-8 relative (|d_ij - d_ji| <= 1e-8 max|d|); zero diagonal within the same
tolerance. The result is made exactly symmetric ((D + D^T) / 2) with an exact zero diagonal.

Stimulus ids say which stimulus each row is; they come from the file (CSV/TSV header or first
column, HDF5 ``stimulus_ids``) or from an ids file beside it (config ``ids:``, read by
:func:`read_ids`: one id per line, or a table with an ``id`` column such as the workflow's own
``results/stimuli/order.tsv``). With ids and ``stimulus_ids`` given, rows and columns are
reordered to follow ``stimulus_ids``; ids are compared as strings (``str(3) == '3'``) and must
match as sets. A file without ids is refused (:class:`MissingIdsError`) where ``require_ids``
is set, as the workflow sets it unless the config entry states ``order: stimuli`` (the file
follows ``results/stimuli/order.tsv`` exactly; :mod:`rsaflow.binding` then ties the file to the
stimulus set it was first used with).

Groups (several subjects' RDMs of one brain region; :func:`load_external_group`): config
``paths: [f1, f2, ...]`` (each file one RDM, as above), or ``path:`` to one file holding a
subjects x N x N array: a 3-D ``.npy``, or an ``.h5`` with dataset ``rdms`` ((S, N, N), or
(S, P) condensed rows) and the optional ``stimulus_ids``. Each subject's RDM passes the checks
above. A group needs at least 2 subjects. Its RDM in the comparison is :func:`group_mean`, the
arithmetic mean of the subjects' dissimilarities.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from rsaflow.compare import n_from_pairs
from rsaflow.errors import ConfigError, InputFileError
from rsaflow.finite import check_finite

#: Relative tolerance of the symmetry and zero-diagonal checks.
RTOL = 1e-8
#: Dataset of an .h5 group file: the subjects' RDMs, (S, N, N) or (S, P).
GROUP_DATASET = "rdms"


class MissingIdsError(InputFileError):
    """An RDM file (and its entry) gives no stimulus ids, and the rows' order was not stated."""


def read_ids(path) -> list[str]:
    """Stimulus ids from a text file: one id per line (blank lines ignored), or a tab-separated
    table whose header row has a column ``id`` (e.g. ``results/stimuli/order.tsv``)."""
    path = Path(path)
    try:
        lines = [line.rstrip("\r\n") for line in path.read_text(encoding="utf-8-sig").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(path, f"cannot read stimulus ids: {exc}") from None
    lines = [line for line in lines if line.strip()]
    header = lines[0].split("\t") if lines else []
    if "id" in header and len(header) > 1:
        col = header.index("id")
        rows = [line.split("\t") for line in lines[1:]]
        bad = next((i for i, r in enumerate(rows) if len(r) != len(header)), None)
        if bad is not None:
            raise InputFileError(path, f"row {bad + 2} has {len(rows[bad])} cells, the header {len(header)}")
        return [r[col].strip() for r in rows]
    return [line.strip() for line in lines]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_text(path: Path, delimiter: str) -> tuple[np.ndarray, list[str] | None]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = [[c.strip() for c in row] for row in csv.reader(fh, delimiter=delimiter) if any(c.strip() for c in row)]
    if not rows:
        raise InputFileError(path, "empty file: expected a square matrix of dissimilarities")
    # ids in the first column: a non-number below the first row (whose first cell may be a corner)
    has_col = any(not _is_number(r[0]) for r in rows[1:])
    header = None
    if not all(_is_number(c) for c in rows[0][1 if has_col else 0:]) or rows[0][0] == "":
        header, rows = rows[0], rows[1:]
    first_col = None
    if has_col:
        first_col, rows = [r[0] for r in rows], [r[1:] for r in rows]
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise InputFileError(path, f"rows have different numbers of cells ({sorted(widths)})")
    n_rows, n_cols = len(rows), (widths.pop() if widths else 0)
    if header is None and first_col is None and n_rows == n_cols + 1:  # all-numeric header row
        header, rows, n_rows = rows[0], rows[1:], n_rows - 1
    if first_col is None and n_cols == n_rows + 1:  # all-numeric id column
        first_col, rows, n_cols = [r[0] for r in rows], [r[1:] for r in rows], n_cols - 1
    try:
        matrix = np.array([[float(c) for c in r] for r in rows], dtype=np.float64).reshape(n_rows, n_cols)
    except ValueError:
        bad = next((i, j) for i, r in enumerate(rows) for j, c in enumerate(r) if not _is_number(c))
        raise InputFileError(path, f"cell at data row {bad[0] + 1}, column {bad[1] + 1} is not a number: "
                                   f"{rows[bad[0]][bad[1]]!r}") from None
    if header is not None:
        if len(header) not in (n_cols, n_cols + 1):
            raise InputFileError(path, f"header row has {len(header)} cells for {n_cols} matrix columns")
        header = header[len(header) - n_cols:]
    if header is not None and first_col is not None and header != first_col:
        diff = [(h, c) for h, c in zip(header, first_col) if h != c][:5]
        raise InputFileError(path, f"header row and first column list different stimulus ids "
                                   f"(first differences: {diff})")
    return matrix, header if header is not None else first_col


def _read_h5(path: Path) -> tuple[np.ndarray, list[str] | None]:
    import h5py

    from rsaflow import h5io

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputFileError(path, f"not a readable HDF5 file: {exc}") from None
    with f:
        name = GROUP_DATASET if GROUP_DATASET in f else "rdm"
        if name not in f:
            raise InputFileError(path, f"dataset 'rdm' missing (or '{GROUP_DATASET}' for a group of subjects' "
                                       f"RDMs; found: {sorted(f)})")
        matrix = np.asarray(f[name][()], dtype=np.float64)
        if name == GROUP_DATASET and matrix.ndim not in (2, 3):
            raise InputFileError(path, f"dataset '{GROUP_DATASET}' must be subjects x N x N (or subjects x "
                                       f"N (N - 1) / 2), got shape {matrix.shape}")
        if name == GROUP_DATASET and matrix.ndim == 2:  # (S, P) condensed rows: square them
            matrix = np.stack([_as_square(path, row, n_from_condensed(path, row.size)) for row in matrix])
        ids = None
        if "stimulus_ids" in f:
            raw = np.atleast_1d(f["stimulus_ids"][()])
            ids = h5io.texts(raw.tolist())
    return matrix, ids


def _as_square(path: Path, matrix: np.ndarray, n_stimuli: int) -> np.ndarray:
    if matrix.ndim == 1:
        expected = n_stimuli * (n_stimuli - 1) // 2
        if matrix.size != expected:
            n = (1 + np.sqrt(1 + 8 * matrix.size)) / 2
            found = f"{int(n)} stimuli" if n == int(n) else "no whole number of stimuli"
            raise InputFileError(path, f"condensed RDM of length {matrix.size} ({found}) but the workflow has "
                                       f"{n_stimuli} stimuli (expected length {expected})")
        square = np.zeros((n_stimuli, n_stimuli))
        iu = np.triu_indices(n_stimuli, k=1)
        square[iu] = matrix
        return square + square.T
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise InputFileError(path, f"an RDM must be a square matrix or a condensed vector, got shape {matrix.shape}")
    if matrix.shape[0] != n_stimuli:
        raise InputFileError(path, f"RDM has {matrix.shape[0]} stimuli but the workflow has {n_stimuli} stimuli")
    return matrix


def _read_matrix(path: Path) -> tuple[np.ndarray, list | None]:
    """The file's matrix (float64) and its stimulus ids (None when it names none), by suffix."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            matrix = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InputFileError(path, f"not a readable .npy array: {exc}") from None
        if matrix.dtype.kind not in "biuf":
            raise InputFileError(path, f"expected a numeric array, got dtype {matrix.dtype}")
        return matrix.astype(np.float64, copy=False), None
    if suffix in (".csv", ".tsv"):
        return _read_text(path, "," if suffix == ".csv" else "\t")
    if suffix in (".h5", ".hdf5"):
        return _read_h5(path)
    raise InputFileError(path, f"unknown RDM file type {suffix!r}; use .npy, .csv, .tsv, .h5 or .hdf5")


def _symmetrised(path: Path, rdm: np.ndarray) -> np.ndarray:
    """``rdm`` checked to be symmetric with a zero diagonal (to RTOL of its largest entry), made exact."""
    scale = max(float(rdm.max()), -float(rdm.min()))  # max |d| without an |d| copy
    diff = rdm - rdm.T
    np.abs(diff, out=diff)
    asym = diff.max()
    del diff
    if asym > RTOL * scale:
        i, j = np.unravel_index(np.argmax(np.abs(rdm - rdm.T)), rdm.shape)
        raise InputFileError(path, f"RDM is not symmetric: d[{i},{j}]={float(rdm[i, j])!r} but d[{j},{i}]={float(rdm[j, i])!r}")
    diag = np.abs(np.diag(rdm))
    if diag.max() > RTOL * scale:
        bad = np.nonzero(diag > RTOL * scale)[0]
        raise InputFileError(path, f"RDM diagonal is not zero at {bad.size} stimuli (first: {bad[:5].tolist()}, "
                                   f"value {float(rdm[bad[0], bad[0]])!r})")
    out = rdm + rdm.T
    out *= 0.5  # (a + b) / 2 exactly: a halving rounds as a division by 2
    np.fill_diagonal(out, 0.0)
    return out


def _reordered(path: Path, rdm: np.ndarray, ids: list, stimulus_ids, n_stimuli: int) -> np.ndarray:
    """``rdm`` (rows in the file's ``ids`` order) put in the workflow's ``stimulus_ids`` order."""
    wanted = [str(s) for s in stimulus_ids]
    if len(wanted) != n_stimuli:
        raise ValueError(f"{len(wanted)} stimulus_ids given for n_stimuli={n_stimuli}")
    if len(set(ids)) != len(ids):
        dup = sorted({s for s in ids if ids.count(s) > 1})
        raise InputFileError(path, f"duplicate stimulus ids in the file: {dup[:5]}")
    missing = [s for s in wanted if s not in set(ids)]
    extra = [s for s in ids if s not in set(wanted)]
    if missing or extra:
        raise InputFileError(path, f"stimulus ids do not match the workflow's: {len(missing)} missing from the "
                                   f"file (first: {missing[:5]}), {len(extra)} not in the workflow "
                                   f"(first: {extra[:5]})")
    pos = {s: i for i, s in enumerate(ids)}
    order = np.array([pos[s] for s in wanted])
    return rdm[np.ix_(order, order)]


def n_from_condensed(path, p: int) -> int:
    """N with N (N - 1) / 2 == p; InputFileError naming ``path`` if there is none."""
    try:
        return n_from_pairs(p)
    except ValueError:
        raise InputFileError(path, f"condensed RDM of length {p} is no whole number of stimuli") from None


def _checked(path: Path, matrix: np.ndarray, ids, n_stimuli: int, stimulus_ids) -> np.ndarray:
    """One RDM (square or condensed) checked, made exactly symmetric and put in the workflow's order."""
    rdm = _symmetrised(path, _as_square(path, matrix, n_stimuli))
    if ids is not None and len(ids) != n_stimuli:
        raise InputFileError(path, f"{len(ids)} stimulus ids for an RDM of {n_stimuli} stimuli")
    if ids is not None and stimulus_ids is not None:
        rdm = _reordered(path, rdm, ids, stimulus_ids, n_stimuli)
    return rdm


#: How a file without stimulus ids can be given them (the end of :class:`MissingIdsError`'s message).
IDS_HELP = ("add stimulus ids (a CSV/TSV header row, an .h5 dataset 'stimulus_ids', or ids: <file> in the "
            "entry naming a text file of one id per line, in the file's row order), or, if its rows follow "
            "results/stimuli/order.tsv exactly, state it with order: stimuli in the entry")


def _read_checked_finite(path: Path, ids=None, require_ids: bool = False) -> tuple[np.ndarray, list | None]:
    """The file's matrix (checked finite) and its ids: the file's own, else ``ids`` (an ids file's);
    MissingIdsError where there are none and ``require_ids`` is set."""
    if not path.exists():
        raise InputFileError(path, "file not found")
    matrix, own = _read_matrix(path)
    if own is not None and ids is not None and list(own) != [str(i) for i in ids]:
        raise InputFileError(path, "the file names its stimulus ids and the entry's ids: file lists others; "
                                   "keep one of them")
    ids = own if own is not None else (None if ids is None else [str(i) for i in ids])
    if ids is None and require_ids:
        raise MissingIdsError(path, f"carries no stimulus ids, so which stimulus each row is cannot be checked: "
                                    f"{IDS_HELP}")
    try:
        check_finite(matrix, "entries")
    except ValueError as exc:
        raise InputFileError(path, str(exc)) from None
    return matrix, ids


def load_external_rdm(path, n_stimuli: int, stimulus_ids=None, ids=None, require_ids: bool = False) -> np.ndarray:
    """Read an external RDM (see the module docstring for formats and checks) as (N, N) float64.

    ``stimulus_ids``: the workflow's stimulus ids in its order; used to reorder the file's
    stimuli when the file (or ``ids``, the ids of an ids file) names them. ``require_ids``:
    refuse a file without ids (MissingIdsError). Raises InputFileError naming the file on any
    problem, also when the file holds a group (use :func:`load_external_group`).
    """
    path = Path(path)
    matrix, ids = _read_checked_finite(path, ids, require_ids)
    if matrix.ndim == 3:
        raise InputFileError(path, f"holds {matrix.shape[0]} subjects' RDMs (shape {matrix.shape}), not one RDM: "
                                   "read it as a group (load_external_group)")
    return _checked(path, matrix, ids, n_stimuli, stimulus_ids)


def is_group_file(path) -> bool:
    """Whether ``path`` holds a group (a 3-D .npy, or an .h5 with dataset ``rdms``), from its header
    alone; False for a file that is missing or unreadable (the job reports those)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False).ndim == 3
        if path.suffix.lower() in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                return GROUP_DATASET in f
    except (OSError, ValueError):
        return False
    return False


def carries_ids(path, parse_text: bool = True) -> bool | None:
    """Whether the RDM file names its stimuli: never a .npy; an .h5 with dataset ``stimulus_ids``;
    a CSV/TSV with a header row or first column of ids (parsed; None with ``parse_text=False``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return False
    if suffix in (".h5", ".hdf5"):
        import h5py

        try:
            with h5py.File(path, "r") as f:
                return "stimulus_ids" in f
        except OSError:
            return None
    if suffix in (".csv", ".tsv") and parse_text:
        try:
            return _read_text(path, "," if suffix == ".csv" else "\t")[1] is not None
        except InputFileError:
            return None
    return None


def check_ids(entries: dict) -> None:
    """DAG-time: ConfigError for the first ``external_rdms`` file that carries no stimulus ids while
    its entry gives neither ``ids:`` nor ``order: stimuli`` (.npy and .h5 files, read from their
    headers; CSV/TSV files are checked by the job, which parses them)."""
    for name, spec in entries.items():
        if spec.get("order") == "stimuli" or spec.get("ids"):
            continue
        files = [("path", spec["path"])] if "path" in spec else [(f"paths[{i}]", p) for i, p in enumerate(spec["paths"])]
        for key, path in files:
            if carries_ids(path, parse_text=False) is False:
                raise ConfigError(f"external_rdms.{name}.{key}", f"{path} carries no stimulus ids, so which stimulus "
                                                                  f"each row is cannot be checked: {IDS_HELP}")


def is_group(spec: dict) -> bool:
    """Whether an ``external_rdms`` entry is a group: ``paths:``, or ``path:`` to a group file."""
    return "paths" in spec or is_group_file(spec["path"])


def load_external_group(paths, n_stimuli: int, stimulus_ids=None, ids=None, require_ids: bool = False) -> np.ndarray:
    """Several subjects' RDMs of one region as (S, N, N) float64, each checked as :func:`load_external_rdm`
    (``ids`` and ``require_ids`` as there, for every file).

    ``paths``: a list of files, one RDM each, or one path (str / Path) to a group file (a 3-D
    .npy, or an .h5 with dataset ``rdms``; a file of one RDM is a group of 1). Raises
    InputFileError for fewer than 2 subjects.
    """
    if isinstance(paths, (str, Path)):
        path = Path(paths)
        matrix, ids = _read_checked_finite(path, ids, require_ids)
        stack = matrix if matrix.ndim == 3 else matrix[None]
        rdms = [_checked(path, m, ids, n_stimuli, stimulus_ids) for m in stack]
        where = path
    else:
        rdms = [load_external_rdm(p, n_stimuli, stimulus_ids, ids, require_ids) for p in paths]
        where = Path(paths[0]) if len(paths) else Path("<no files>")
    if len(rdms) < 2:
        raise InputFileError(where, f"a group of {len(rdms)} subject RDM: a group needs at least 2 subjects "
                                    "(paths: [...] of 2 or more files, or a subjects x N x N array)")
    return np.stack(rdms)


def group_mean(rdms: np.ndarray) -> np.ndarray:
    """The group's RDM in the comparison: the arithmetic mean of the subjects' dissimilarities,
    d(i, j) = mean_s d_s(i, j) (rsatoolbox's ``RDMs.mean()``). rsatoolbox's noise ceiling pools
    differently, per comparison method (rsaflow.ceiling.pool_rdms: mean of ranks for spearman, of
    z-scores for pearson, ...); the mean here is the method-independent RDM every analysis shares."""
    return np.asarray(rdms, dtype=np.float64).mean(axis=0)
