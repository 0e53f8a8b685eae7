"""The text outputs of a second order: the matrix as TSV and the inference values in long format."""

from __future__ import annotations

import os

import numpy as np

#: Columns of inference.tsv.
INFERENCE_COLUMNS = ("row", "column", "dissimilarity", "ci_lower", "ci_upper", "boot_std", "p_value")


def write_tsv(path, labels: list[str], matrix: np.ndarray) -> None:
    lines = ["label\t" + "\t".join(labels)]
    lines += [labels[i] + "\t" + "\t".join(repr(float(v)) for v in matrix[i]) for i in range(len(labels))]
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def write_inference_tsv(path, labels: list[str], datasets: dict) -> None:
    """Long format, one line per pair a < b: labels, dissimilarity and each inference value
    (``nan`` where not computed); only the header when inference is off."""
    lines = ["\t".join(INFERENCE_COLUMNS)]
    columns = [datasets.get(name) for name in ("ci_lower", "ci_upper", "boot_std", "p_values")]
    if any(c is not None for c in columns):
        matrix = datasets["matrix"]
        for a in range(len(labels)):
            for b in range(a + 1, len(labels)):
                cells = [repr(float(matrix[a, b]))]
                cells += ["nan" if c is None else repr(float(c[a, b])) for c in columns]
                lines.append("\t".join([labels[a], labels[b], *cells]))
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, path)

