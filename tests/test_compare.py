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
    """The config schema names no metric or method itself: its enums are filled from rsaflow.methods'
    names when it is loaded (rsaflow.schema.load_schema), and its defaults are the registries' first
    entries (the measure table's "default")."""
    import yaml

    from conftest import REPO
    from rsaflow import compare, rdm
    from rsaflow.methods import METHODS, METRICS
    from rsaflow.schema import load_schema

    path = REPO / "workflow/schemas/config.schema.yaml"
    for schema, filled in ((yaml.safe_load(path.read_text()), False), (load_schema(path), True)):
        props = schema["properties"]
        analysis = props["analyses"]["additionalProperties"]["properties"]
        for node, names in ((props["rdm"]["properties"]["metric"], METRICS), (analysis["metric"], METRICS),
                            (props["compare"]["properties"]["method"], METHODS), (analysis["method"], METHODS)):
            assert node.get("enum") == (list(names) if filled else None)
    assert props["rdm"]["properties"]["metric"]["default"] == next(iter(METRICS))
    assert props["compare"]["properties"]["method"]["default"] == next(iter(METHODS))
    assert rdm.METRICS == tuple(METRICS) and compare.ALL_METHODS == tuple(METHODS)
    kinds = (compare.VECTOR_METHODS + compare.WHOLE_METHODS + compare.RAW_METHODS + compare.PAIRWISE_METHODS
             + compare.ACTIVATION_METHODS)
    assert sorted(kinds) == sorted(METHODS)


def test_measure_table_is_the_registry():
    """docs/measures.md holds the registry's measure table (rsaflow.methods.measure_table: one row per
    metric and method, built from their entries), and each method's row names its rsatoolbox equivalent."""
    from conftest import REPO
    from rsaflow.methods import METHODS, measure_table

    table = measure_table()
    assert table in (REPO / "docs" / "measures.md").read_text(), "regenerate it: python -m rsaflow.methods"
    rows = {line.split("`")[1]: line for line in table.splitlines() if line.startswith("| `")}
    assert [key.split(": ")[1] for key in rows if key.startswith("compare.method")] == list(METHODS)
    for name, info in METHODS.items():
        if info.rsatoolbox:
            assert f"'{info.rsatoolbox}'" in rows[f"compare.method: {name}"], name


@pytest.mark.parametrize("method", ["spearman", "pearson", "cosine"])
@pytest.mark.parametrize("threads", [1, 2])
def test_unit_vectors_in_threads_equal_one_at_a_time(uppers, method, threads):
    """compare.unit_vectors stacks unit_vector's rows bit for bit, whatever the thread count, and
    their products are the scipy statistics."""
    from rsaflow.compare import unit_vectors

    vectors = uppers + [np.round(u, 1) for u in uppers]  # ties too
    got = unit_vectors(vectors, method, threads=threads)
    np.testing.assert_array_equal(got, np.stack([unit_vector(v, method) for v in vectors]))
    if method != "cosine":
        stat = spearmanr if method == "spearman" else pearsonr
        np.testing.assert_allclose(got[0] @ got[6], stat(vectors[0], vectors[6])[0], atol=1e-12)


def test_unit_vectors_name_the_offending_row(uppers):
    from rsaflow.compare import unit_vectors

    with pytest.raises(DegenerateRDMError, match=r"vector 2: .*zero variance"):
        unit_vectors(uppers[:2] + [np.full(190, 1.0)] + uppers[2:], threads=2)
    with pytest.raises(ValueError, match="vector 1 has 10 dissimilarities, vector 0 has 190"):
        unit_vectors([uppers[0], np.arange(10.0)])


def test_centre_norm_in_chunks_equals_the_direct_norm(monkeypatch):
    """The norm summed over chunks of SUM_CHUNK values (no centred copy of the whole vector) equals
    the norm of the centred vector to rounding, for one chunk bit for bit."""
    from rsaflow import compare

    v = np.random.default_rng(3).random(10_001) * 1e3
    direct = float(np.sqrt(np.einsum("i,i->", v - v.mean(), v - v.mean())))
    assert compare.centre_norm(v) == (v.mean(), direct)  # one chunk (SUM_CHUNK > 10,001)
    monkeypatch.setattr(compare, "SUM_CHUNK", 7)
    centre, norm = compare.centre_norm(v)
    assert centre == v.mean() and norm == pytest.approx(direct, rel=1e-13)
