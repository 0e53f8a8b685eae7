"""External RDMs in every accepted format, their checks, and the rsatoolbox HDF5 export."""

import h5py
import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from rsaflow.compare import second_order
from rsaflow.errors import InputFileError
from rsaflow.export import write_rsatoolbox_h5
from rsaflow.external import load_external_rdm

N = 6
IDS = [f"s{i}" for i in range(N)]


@pytest.fixture
def rdm():
    return squareform(pdist(np.random.default_rng(0).normal(size=(N, 3))))


def write_text(path, rdm, sep, header=None, first_col=None, corner=True):
    lines = []
    if header is not None:
        lines.append(sep.join(([""] if first_col is not None and corner else []) + list(header)))
    for i, row in enumerate(rdm):
        lines.append(sep.join(([str(first_col[i])] if first_col is not None else []) + [repr(float(v)) for v in row]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_npy_square_and_condensed(tmp_path, rdm):
    np.save(tmp_path / "a.npy", rdm)
    np.save(tmp_path / "b.npy", squareform(rdm))
    for name in ("a.npy", "b.npy"):
        out = load_external_rdm(tmp_path / name, N)
        np.testing.assert_array_equal(out, rdm)
    with pytest.raises(InputFileError, match=r"b\.npy.*length 15 \(6 stimuli\).*7 stimuli"):
        load_external_rdm(tmp_path / "b.npy", 7)
    with pytest.raises(InputFileError, match=r"a\.npy: RDM has 6 stimuli but the workflow has 5"):
        load_external_rdm(tmp_path / "a.npy", 5)


@pytest.mark.parametrize("suffix, sep", [(".csv", ","), (".tsv", "\t")])
def test_text_variants(tmp_path, rdm, suffix, sep):
    perm = np.array([3, 0, 5, 1, 4, 2])
    shuffled = rdm[np.ix_(perm, perm)]
    ids = [IDS[p] for p in perm]
    cases = {
        "plain": (rdm, None, None, True),
        "header": (shuffled, ids, None, True),
        "column": (shuffled, None, ids, True),
        "both": (shuffled, ids, ids, True),
        "both_nocorner": (shuffled, ids, ids, False),
        "numeric_ids": (shuffled, [str(p) for p in perm], [str(p) for p in perm], True),
    }
    for name, (m, header, col, corner) in cases.items():
        path = write_text(tmp_path / f"{name}{suffix}", m, sep, header, col, corner)
        wanted = [str(i) for i in range(N)] if name == "numeric_ids" else IDS
        np.testing.assert_allclose(load_external_rdm(path, N, wanted), rdm, rtol=0, atol=0, err_msg=name)
    # ids in the file but none requested: file order kept
    np.testing.assert_array_equal(load_external_rdm(tmp_path / f"header{suffix}", N), shuffled)


def test_h5_with_ids(tmp_path, rdm):
    perm = np.array([5, 4, 3, 2, 1, 0])
    with h5py.File(tmp_path / "r.h5", "w") as f:
        f["rdm"] = rdm[np.ix_(perm, perm)]
        f["stimulus_ids"] = np.array([IDS[p] for p in perm], dtype="S")
    np.testing.assert_array_equal(load_external_rdm(tmp_path / "r.h5", N, IDS), rdm)
    match = r"r\.h5: stimulus ids do not match.*1 missing.*'s9'.*1 not in the workflow.*'s5'"
    with pytest.raises(InputFileError, match=match):
        load_external_rdm(tmp_path / "r.h5", N, IDS[:5] + ["s9"])
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["matrix"] = rdm
    with pytest.raises(InputFileError, match=r"bad\.h5: dataset 'rdm' missing"):
        load_external_rdm(tmp_path / "bad.h5", N)


def test_checks(tmp_path, rdm):
    bad = rdm.copy()
    bad[0, 1] += 1e-3
    np.save(tmp_path / "asym.npy", bad)
    with pytest.raises(InputFileError, match=r"asym\.npy: RDM is not symmetric: d\[0,1\]=[0-9.]+ but") as info:
        load_external_rdm(tmp_path / "asym.npy", N)
    assert "np." not in str(info.value)  # plain numbers, not numpy reprs such as np.float64(0.5)
    tiny = rdm.copy()
    tiny[0, 1] += 1e-12  # within 1e-8 relative: accepted, made exactly symmetric
    np.save(tmp_path / "tiny.npy", tiny)
    out = load_external_rdm(tmp_path / "tiny.npy", N)
    assert np.array_equal(out, out.T)
    diag = rdm + np.eye(N)
    np.save(tmp_path / "diag.npy", diag)
    with pytest.raises(InputFileError, match=r"diag\.npy: RDM diagonal is not zero.*value 1\.0\)") as info:
        load_external_rdm(tmp_path / "diag.npy", N)
    assert "np." not in str(info.value)
    nan = rdm.copy()
    nan[1, 2] = nan[2, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(InputFileError, match=r"nan\.npy: 2 entries are NaN"):
        load_external_rdm(tmp_path / "nan.npy", N)
    np.save(tmp_path / "rect.npy", rdm[:, :5])
    with pytest.raises(InputFileError, match="square"):
        load_external_rdm(tmp_path / "rect.npy", N)
    (tmp_path / "x.csv").write_text("0,1\n1,zero\n")
    with pytest.raises(InputFileError, match=r"x\.csv: cell at data row 2, column 2 is not a number"):
        load_external_rdm(tmp_path / "x.csv", 2)
    with pytest.raises(InputFileError, match="file not found"):
        load_external_rdm(tmp_path / "missing.npy", N)
    (tmp_path / "x.txt").write_text("0\n")
    with pytest.raises(InputFileError, match=r"x\.txt: unknown RDM file type '\.txt'"):
        load_external_rdm(tmp_path / "x.txt", N)


def test_rsatoolbox_roundtrip(tmp_path):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    rng = np.random.default_rng(1)
    base = rng.normal(size=(N, 4))
    rdms = np.stack([squareform(pdist(base + rng.normal(0, s, base.shape))) for s in (0.1, 0.5, 1.0, 3.0)])
    names = ["alexnet/features.0", "alexnet/features.3", "resnet18/layer1.0/conv1", "resnet18/fc"]
    labels = [f"img{i:03d}_cat" for i in range(N)]
    path = tmp_path / "out" / "rdms.h5"
    write_rsatoolbox_h5(path, rdms, names, labels, "squared euclidean")
    assert sorted(p.name for p in path.parent.iterdir()) == ["rdms.h5"]  # no temporary left
    loaded = rsatoolbox.rdm.load_rdm(str(path), file_type="hdf5")
    assert loaded.n_rdm == 4 and loaded.n_cond == N and loaded.dissimilarity_measure == "squared euclidean"
    np.testing.assert_array_equal(loaded.get_matrices(), rdms)
    assert list(loaded.rdm_descriptors["model"]) == ["alexnet", "alexnet", "resnet18", "resnet18"]
    assert list(loaded.rdm_descriptors["layer"]) == ["features.0", "features.3", "layer1.0/conv1", "fc"]
    assert list(loaded.rdm_descriptors["name"]) == names
    assert list(loaded.pattern_descriptors["stimulus"]) == labels
    assert list(loaded.pattern_descriptors["index"]) == list(range(N))
    ref = 1 - rsatoolbox.rdm.compare(loaded, loaded, method="spearman")
    np.fill_diagonal(ref, 0)
    iu = np.triu_indices(N, k=1)
    np.testing.assert_allclose(second_order(list(rdms[:, iu[0], iu[1]]), "spearman"), ref, atol=1e-10, rtol=0)
    # subsetting by descriptor works on the loaded object
    assert loaded.subset("model", "resnet18").n_rdm == 2
    # non-ASCII ids are escaped reversibly (rsatoolbox reads fixed-length strings as ASCII)
    write_rsatoolbox_h5(tmp_path / "u.h5", rdms, names, ["caf\u00e9"] * N, "correlation")
    escaped = rsatoolbox.rdm.load_rdm(str(tmp_path / "u.h5"), file_type="hdf5").pattern_descriptors["stimulus"][0]
    assert escaped.encode().decode("unicode_escape") == "caf\u00e9"


RSATOOLBOX_MEASURES = {"euclidean", "squared euclidean", "correlation", "mahalanobis", "squared mahalanobis",
                       "crossnobis", "poisson", "poisson_cv"}


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "correlation", "cosine"])
def test_export_job_measures_and_stimulus_ids(tmp_path, metric):
    """End to end through the jobs: folder stimuli, model RDMs of each metric, an external RDM with ids."""
    rsatoolbox = pytest.importorskip("rsatoolbox")
    from PIL import Image

    from rsaflow import h5io
    from rsaflow.export import MEASURE_NAMES
    from rsaflow.jobs.export_rsatoolbox import export_rsatoolbox
    from rsaflow.jobs.external_rdm import write_external
    from rsaflow.jobs.rdm import write_rdm
    from rsaflow.jobs.stimuli import write_stimuli

    rng = np.random.default_rng(3)
    for cls in ("circles", "squares"):
        (tmp_path / "img" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "img" / cls / f"img{i:02d}.png")
    spec = {"source": "folder", "root": str(tmp_path / "img"), "per_class": 3, "seed": 0}
    s = write_stimuli(tmp_path / "stimuli.h5", spec, [])
    ids = s["provenance"]["files"]
    n = len(ids)
    assert sorted(ids) == [f"{c}/img{i:02d}.png" for c in ("circles", "squares") for i in range(3)]

    patterns = {f"net/l{j}": rng.normal(size=(n, 5 + j)).astype(np.float32) for j in range(2)}
    paths = []
    for label, x in patterns.items():
        model, layer = label.split("/")
        attrs = {"model": model, "layer": layer, "node_index": 1, "stimulus_digest": s["digest"]}
        h5io.write_h5(tmp_path / f"{layer}.act.h5", "activations", {"activations": x}, attrs)
        write_rdm(tmp_path / f"{layer}.act.h5", tmp_path / f"{layer}.rdm.h5", {"metric": metric, "block": 4}, [])
        paths.append(tmp_path / f"{layer}.rdm.h5")
    # an external RDM whose file lists the stimuli in another order, matched by id
    brain = squareform(pdist(rng.normal(size=(n, 3))))
    perm = rng.permutation(n)
    write_text(tmp_path / "brain.csv", brain[np.ix_(perm, perm)], ",", [ids[p] for p in perm])
    write_external(tmp_path / "brain.csv", tmp_path / "stimuli.h5", tmp_path / "brain.h5", "V1", {}, [])
    paths.append(tmp_path / "brain.h5")

    export_rsatoolbox(paths, tmp_path / "stimuli.h5", tmp_path / "export.h5", metric)
    loaded = rsatoolbox.rdm.load_rdm(str(tmp_path / "export.h5"), file_type="hdf5")
    assert list(loaded.pattern_descriptors["stimulus"]) == ids  # the ids external RDMs are matched on
    assert list(loaded.rdm_descriptors["name"]) == ["external/V1", "net/l0", "net/l1"]
    measures = list(loaded.rdm_descriptors["dissimilarity_measure"])
    assert measures[0] == MEASURE_NAMES["external"] and "external" in measures[0]
    assert measures[1] == measures[2] == MEASURE_NAMES[metric]
    assert loaded.dissimilarity_measure.startswith("mixed")  # model and external RDMs in one set
    np.testing.assert_allclose(loaded.subset("model", "external").get_matrices()[0], brain, rtol=0, atol=1e-15)

    name = MEASURE_NAMES[metric]
    models = loaded.subset("model", "net")
    for j, (label, x) in enumerate(patterns.items()):
        ds = rsatoolbox.data.Dataset(x.astype(np.float64), obs_descriptors={"stimulus": ids})
        if metric in ("sqeuclidean", "correlation"):  # rsatoolbox computes these: same name, same values
            ref = rsatoolbox.rdm.calc_rdm(ds, method="euclidean" if metric == "sqeuclidean" else metric)
            assert ref.dissimilarity_measure == name
            np.testing.assert_allclose(models.get_matrices()[j], ref.get_matrices()[0], rtol=1e-10, atol=1e-12)
        else:  # no rsatoolbox measure: the name is none of rsatoolbox's (each of which is another formula)
            assert name not in RSATOOLBOX_MEASURES
        if metric == "euclidean":  # the square root of rsatoolbox's 'euclidean' method
            sq = rsatoolbox.rdm.calc_rdm(ds, method="euclidean").get_matrices()[0]
            np.testing.assert_allclose(models.get_matrices()[j], np.sqrt(sq), rtol=1e-10, atol=1e-12)


def test_results_api_reads_what_the_jobs_wrote(tmp_path):
    """rsaflow.results: the square RDM equals pdist, and to_rsatoolbox carries the same values and names."""
    rsatoolbox = pytest.importorskip("rsatoolbox")
    from scipy.spatial.distance import pdist, squareform

    from rsaflow import results
    from rsaflow.jobs.per_layer import write_rdm_file

    x = np.random.default_rng(3).normal(size=(7, 4))
    ref = squareform(pdist(x))
    paths = []
    for layer in ("a", "b"):
        paths.append(tmp_path / f"{layer}.h5")
        write_rdm_file(paths[-1], ref * (2 if layer == "b" else 1),
                       {"model": "m", "layer": layer, "stimulus_digest": "d", "metric": "euclidean"}, "test")
    rec = results.read_rdm(paths[0], square=True)
    np.testing.assert_array_equal(rec["rdm"], ref)
    assert rec["label"] == "m/a" and rec["n_stimuli"] == 7
    rdms = results.to_rsatoolbox(paths)
    assert isinstance(rdms, rsatoolbox.rdm.RDMs) and rdms.n_rdm == 2
    np.testing.assert_allclose(rdms.get_matrices()[1], 2 * ref, rtol=0, atol=0)
    assert rdms.rdm_descriptors["name"] == ["m/a", "m/b"]
