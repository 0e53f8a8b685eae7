"""Step ``stimuli``: select the stimulus set and store it; read it back."""

from __future__ import annotations

import logging

import numpy as np

from rsaflow import atomic, h5io
from rsaflow.provenance import base_attrs
from rsaflow.results import stimulus_ids
from rsaflow.stimuli import build_stimulus_set, order_table

log = logging.getLogger(__name__)


def write_stimuli(out_path, spec: dict, code_files, order_path=None) -> dict:
    """Build the stimulus set of ``spec`` (the config's ``stimuli`` slice) and write it atomically,
    and its order as a table at ``order_path`` (:func:`rsaflow.stimuli.order_table`).

    Datasets: ``images`` (N, 3, H, W) uint8, ``labels`` and ``indices`` int64, ``class_names``.
    Attributes: ``digest`` (see :func:`rsaflow.stimuli.stimulus_digest`), ``source`` provenance.
    """
    s = build_stimulus_set(spec)
    if spec["source"] == "cifar10" and not s["provenance"]["official_release"]:
        log.warning("CIFAR10 files under %s differ from the official release (md5 %s); using them as they are",
                    spec["root"], s["provenance"]["md5"])
    n, _, h, w = s["images"].shape
    log.info("%s: %d stimuli of %dx%d in %d classes, digest %s", spec["source"], n, h, w, len(s["class_names"]), s["digest"])
    h5io.write_h5(
        out_path,
        "stimuli",
        {
            "images": s["images"],
            "labels": s["labels"],
            "indices": s["indices"],
            "class_names": np.array(s["class_names"], dtype=object),
        },
        {**base_attrs(spec, code_files), "digest": s["digest"], "source": s["provenance"]},
    )
    if order_path is not None:
        atomic.write_text(order_path, order_table(stimulus_ids(out_path), s["labels"], s["class_names"]))
        log.info("stimulus order (position, id, class) written to %s", order_path)
    return s
