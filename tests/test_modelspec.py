"""What a model entry means (rsaflow.modelspec) and the one NaN/Inf check (rsaflow.finite)."""

import numpy as np
import pytest

from rsaflow import finite
from rsaflow.errors import ConfigError
from rsaflow.modelspec import check_weights, checkpoint_path, weights_kind


@pytest.mark.parametrize("value, kind", [
    ("none", "none"), ("DEFAULT", "name"), ("IMAGENET1K_V1", "name"), ("model", "name"),
    ("ft.pt", "checkpoint"), ("/models/ft.pt", "checkpoint"), ("ckpt/epoch-3", "checkpoint"), ("~/m.pth", "checkpoint"),
])
def test_weights_kind(value, kind):
    assert weights_kind(value) == kind
    assert checkpoint_path(value) == (value if kind == "checkpoint" else None)


def test_check_weights_accepts_each_kind_and_refuses_unknown_names():
    for ok in ("none", "DEFAULT", "IMAGENET1K_V1", "ft.pt"):
        check_weights(ok, "resnet18", ["IMAGENET1K_V1", "DEFAULT"], "models.r.weights")
    with pytest.raises(ConfigError, match=r"models.r.weights: 'IMAGENET1K_V9' is neither a weights name of resnet18 "
                                          r"\(DEFAULT, IMAGENET1K_V1\)"):
        check_weights("IMAGENET1K_V9", "resnet18", ["IMAGENET1K_V1", "DEFAULT"], "models.r.weights")


@pytest.mark.parametrize("shape", [(7,), (13, 11), (5, 40, 3), (3, 1000), (0, 4), (2, 3, 0)])
@pytest.mark.parametrize("block_bytes", [8, 64, finite.BLOCK_BYTES])
def test_check_finite_against_brute_force(shape, block_bytes, monkeypatch):
    """Counts and rows against a loop over every entry, with blocks smaller than a row, a few rows, or all."""
    monkeypatch.setattr(finite, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(sum(shape))
    a = rng.normal(size=shape)
    flat = a.reshape(-1)
    flat[rng.random(flat.size) < 0.05] = np.nan
    flat[rng.random(flat.size) < 0.03] = -np.inf
    rows = a.reshape(shape[0], int(np.prod(shape[1:])))
    bad_rows = [i for i, row in enumerate(rows) if any(not np.isfinite(x) for x in row)]
    count = sum(1 for x in flat if not np.isfinite(x))
    if not count:
        finite.check_finite(a, "values", rows="stimuli")
        return
    with pytest.raises(ValueError) as exc:
        finite.check_finite(a, "values", rows="stimuli")
    assert str(exc.value) == f"{count} values are NaN or Inf in {len(bad_rows)} stimuli (first rows: {bad_rows[:5]})"
    with pytest.raises(ValueError, match=rf"^{count} values are NaN or Inf$"):
        finite.check_finite(a, "values")


def test_check_finite_accepts_finite_and_scalars():
    finite.check_finite(np.arange(12.0).reshape(3, 4), "values")
    finite.check_finite(3.0, "values")
    with pytest.raises(ValueError, match="^1 values are NaN or Inf$"):
        finite.check_finite(np.inf, "values")
