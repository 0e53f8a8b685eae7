"""Second-order comparisons against the tutorial's spearmanr loop, pearsonr, and rsatoolbox."""

import numpy as np
import pytest
from scipy.spatial.distance import squareform
from scipy.stats import pearsonr, spearmanr

from rsaflow.compare import DegenerateRDMError, second_order, unit_vector


def tutorial_loop(uppers, stat):
    """All ordered pairs, one scipy call each, 0 on the diagonal (the tutorial's procedure)."""
    k = len(uppers)
    out = np.zeros((k, k))
    for a in range(k):
        for b in range(k):
            if a != b:
                out[a, b] = 1 - stat(uppers[a], uppers[b])[0]
    return out


@pytest.fixture
def uppers():
    rng = np.random.default_rng(0)
    base = rng.random(190)
    return [base + rng.normal(0, s, 190) for s in (0.01, 0.1, 0.3, 1.0, 3.0)]


def test_spearman_equals_tutorial_loop(uppers):
    np.testing.assert_allclose(second_order(uppers, "spearman"), tutorial_loop(uppers, spearmanr), atol=1e-12)


def test_spearman_with_ties(uppers):
    tied = [np.round(u, 1) for u in uppers]  # many ties: average ranks, as spearmanr
    np.testing.assert_allclose(second_order(tied, "spearman"), tutorial_loop(tied, spearmanr), atol=1e-12)


def test_pearson_equals_pearsonr(uppers):
    np.testing.assert_allclose(second_order(uppers, "pearson"), tutorial_loop(uppers, pearsonr), atol=1e-12)


def test_symmetric_zero_diagonal(uppers):
    m = second_order(uppers)
    assert np.array_equal(m, m.T) and np.all(np.diag(m) == 0)


def test_constant_rdm_is_refused():
    with pytest.raises(DegenerateRDMError, match="zero variance"):
        unit_vector(np.full(10, 3.0))


def test_nan_is_refused():
    v = np.arange(10.0)
    v[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        unit_vector(v)


def test_rsatoolbox_agrees(uppers):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    rdms = rsatoolbox.rdm.RDMs(np.stack(uppers), dissimilarity_measure="euclidean")
    for ours_method, theirs in (("spearman", "spearman"), ("pearson", "corr")):
        ref = 1 - rsatoolbox.rdm.compare(rdms, rdms, method=theirs)
        np.fill_diagonal(ref, 0)
        np.testing.assert_allclose(second_order(uppers, ours_method), ref, atol=1e-10)


def test_square_rdms_roundtrip(uppers):
    squares = [squareform(u) for u in uppers]
    from rsaflow.rdm import upper_triangle

    np.testing.assert_array_equal(second_order([upper_triangle(s) for s in squares]), second_order(uppers))


def test_average_ranks_equal_scipy_rankdata():
    from scipy.stats import rankdata

    from rsaflow.compare import average_ranks

    rng = np.random.default_rng(7)
    for values in (rng.random(1000), rng.integers(0, 20, 1000).astype(float), np.zeros(5), np.arange(3.0)[::-1]):
        np.testing.assert_array_equal(average_ranks(values), rankdata(values, method="average"))


def test_schema_enums_are_the_registry():
    """The config schema's metric and method enums are exactly rsaflow.methods' names."""
    import yaml

    from conftest import REPO
    from rsaflow import compare, rdm
    from rsaflow.methods import METHODS, METRICS

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    props = schema["properties"]
    assert props["rdm"]["properties"]["metric"]["enum"] == list(METRICS)
    assert props["compare"]["properties"]["method"]["enum"] == list(METHODS)
    analysis = props["analyses"]["additionalProperties"]["properties"]
    assert analysis["metric"]["enum"] == list(METRICS) and analysis["method"]["enum"] == list(METHODS)
    assert rdm.METRICS == tuple(METRICS) and compare.ALL_METHODS == tuple(METHODS)
    kinds = compare.VECTOR_METHODS + compare.WHOLE_METHODS + compare.RAW_METHODS + compare.ACTIVATION_METHODS
    assert sorted(kinds) == sorted(METHODS)


def test_readme_measure_table_is_the_registry():
    """The measure table (docs/measures.md) has one row per metric and method of the registry, and each
    method's row names its rsatoolbox equivalent (rsaflow.methods.Method.rsatoolbox)."""
    import re

    from conftest import REPO
    from rsaflow.methods import METHODS, METRICS

    rows = re.findall(r"^\| `(rdm\.metric|compare\.method): (\w+)`[^|]*\|([^\n]*)$", (REPO / "docs" / "measures.md").read_text(), re.M)
    assert [name for key, name, _ in rows if key == "rdm.metric"] == list(METRICS)
    assert sorted(name for key, name, _ in rows if key == "compare.method") == sorted(METHODS)
    for key, name, rest in rows:
        if key == "compare.method" and METHODS[name].rsatoolbox:
            assert f"'{METHODS[name].rsatoolbox}'" in rest, (name, rest)
