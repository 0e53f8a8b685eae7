"""Where labels go: free boxes around points, in display pixels (pure numpy, no matplotlib).

:func:`rsaflow.plots.base.place_labels` measures each label's text and asks :func:`free_box` for
the first spot, on rings of growing radius around its point, that is inside the axes and clear of
every obstacle (markers, drawn lines, labels already placed).
"""

from __future__ import annotations

import numpy as np

#: Ring radii (px) tried around a point, nearest first.
RADII_PX = (3, 7, 12, 18, 26, 36, 48, 62, 80, 100, 125, 155, 190)


def candidate_boxes(point: np.ndarray, w: float, h: float, outward: np.ndarray) -> np.ndarray:
    """Lower-left corners of label boxes (w x h px) around ``point``: rings of growing radius, each
    ring's directions ordered by closeness to ``outward``. Returns (n, 2)."""
    corners = []
    for r in RADII_PX:
        n_dir = 8 if r < 20 else 16
        ang = np.arange(n_dir) * (2 * np.pi / n_dir)
        dirs = np.stack([np.cos(ang), np.sin(ang)], axis=1)
        dirs = dirs[np.argsort(-(dirs @ outward), kind="stable")]
        anchor = point + r * dirs
        corners.append(anchor - np.stack([w * (1 - dirs[:, 0]) / 2, h * (1 - dirs[:, 1]) / 2], axis=1))
    return np.concatenate(corners)


def overlaps(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """For each (x0, y0, x1, y1) in ``boxes``, whether it intersects any of ``others``."""
    if len(others) == 0:
        return np.zeros(len(boxes), dtype=bool)
    a, b = boxes[:, None, :], others[None, :, :]
    hit = (a[..., 0] < b[..., 2]) & (b[..., 0] < a[..., 2]) & (a[..., 1] < b[..., 3]) & (b[..., 1] < a[..., 3])
    return hit.any(axis=1)


def segment_boxes(segments_px: np.ndarray, half: float = 1.5, step: float = 3.0) -> np.ndarray:
    """Small boxes every ``step`` px along line segments ((n, 2, 2) display coords), as obstacles."""
    boxes = []
    for a, b in segments_px:
        t = np.linspace(0.0, 1.0, max(2, int(np.hypot(*(b - a)) / step) + 1))[:, None]
        p = a + t * (b - a)
        boxes.append(np.column_stack([p - half, p + half]))
    return np.concatenate(boxes) if boxes else np.empty((0, 4))


def free_box(point, w, h, centre, frame, obstacles) -> np.ndarray | None:
    """The first free (x0, y0, x1, y1) label box around ``point``, or None (see
    :func:`rsaflow.plots.base.place_labels`)."""
    outward = point - centre
    outward = outward / (np.hypot(*outward) or 1.0)
    lower_left = candidate_boxes(point, w, h, outward)
    boxes = np.column_stack([lower_left, lower_left + [w, h]])
    reach = RADII_PX[-1] + w + h
    near = obstacles[(np.abs(obstacles[:, :2] - point) < reach).all(axis=1)]
    ok = ((boxes[:, 0] >= frame[0]) & (boxes[:, 1] >= frame[1]) & (boxes[:, 2] <= frame[2])
          & (boxes[:, 3] <= frame[3]) & ~overlaps(boxes, near))
    return boxes[int(np.argmax(ok))] if ok.any() else None
