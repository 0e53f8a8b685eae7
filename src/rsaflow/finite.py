"""The one NaN/Inf check of arrays, with one message shape for every artifact that is checked."""

from __future__ import annotations

import numpy as np

#: Bytes of values examined at a time: the boolean temporaries are at most an eighth of it for
#: float64, whatever the array's size or shape.
BLOCK_BYTES = 16 * 2**20


def _count_block(block: np.ndarray) -> tuple[int, np.ndarray]:
    """NaN/Inf entries of ``block`` (at least 2-D) and the mask of its rows holding one."""
    step = max(1, BLOCK_BYTES // max(1, block[:, :1].nbytes))  # columns (axis 1) at a time
    count, rows = 0, np.zeros(block.shape[0], dtype=bool)
    for lo in range(0, block.shape[1], step):
        bad = ~np.isfinite(block[:, lo : lo + step])
        count += int(np.count_nonzero(bad))
        rows |= bad.any(axis=tuple(range(1, bad.ndim)))
    return count, rows


def check_finite(values, what: str, rows: str | None = None) -> None:
    """ValueError unless every entry of ``values`` is finite (no NaN, no +Inf, no -Inf).

    The message is ``"<n> <what> are NaN or Inf"``, followed, when ``rows`` names what a row along
    axis 0 is (e.g. ``"stimuli"``), by ``" in <k> <rows> (first rows: [i, ...])"`` (the first five,
    ascending). ``values``: any array-like; it is examined in blocks of about :data:`BLOCK_BYTES`,
    so the temporaries stay small whatever its size.
    """
    values = np.asarray(values)
    if values.ndim < 2:
        values = values.reshape(-1, 1)
    step = max(1, BLOCK_BYTES // max(1, values[:1].nbytes))  # rows at a time
    count, bad_rows = 0, []
    for lo in range(0, values.shape[0], step):
        n, mask = _count_block(values[lo : lo + step])
        count += n
        bad_rows.extend((lo + np.flatnonzero(mask)).tolist())
    if not count:
        return
    message = f"{count} {what} are NaN or Inf"
    if rows is not None:
        message += f" in {len(bad_rows)} {rows} (first rows: {bad_rows[:5]})"
    raise ValueError(message)
