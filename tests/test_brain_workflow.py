"""The workflow with external RDM groups: noise ceilings against rsatoolbox, the group's row against its
mean RDM, the model-versus-brain figure in the report (digits stimuli, untrained models)."""

import warnings
import zipfile

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from conftest import Workflow
from rsaflow.ceiling import rdm_similarity
from rsaflow.methods import METHODS
from rsaflow.results import read_rdm, read_second_order

pytestmark = pytest.mark.slow

N = 30  # digits, 3 per class


def noisy_subjects(seed: int, s: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = pdist(rng.normal(size=(N, 5)))
    return np.stack([squareform(base + 0.5 * base.mean() * rng.random(base.size)) for _ in range(s)])


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    root = tmp_path_factory.mktemp("brain")
    it, v4 = noisy_subjects(0), noisy_subjects(1)
    paths = []
    for i, r in enumerate(it):
        np.savetxt(root / f"it_{i}.csv", r, delimiter=",")
        paths.append(str(root / f"it_{i}.csv"))
    np.save(root / "v4.npy", v4)
    np.save(root / "single.npy", v4[0])
    config = {
        "stimuli": {"source": "digits", "per_class": 3, "seed": 0},
        "models": {
            "resnet18": {"weights": "none", "layers": {"layer2": {"node": "layer2", "reduce": "mean"},
                                                       "avgpool": "avgpool"}},
            "squeeze": {"arch": "squeezenet1_1", "weights": "none", "layers": {"features": "features.12"}},
        },
        "extraction": {"batch_size": 16, "device": "cpu", "threads": 1, "gpu": False},
        "external_rdms": {"IT": {"paths": paths, "order": "stimuli"},
                          "V4": {"path": str(root / "v4.npy"), "order": "stimuli"},
                          "single": {"path": str(root / "single.npy"), "order": "stimuli"}},
        "analyses": {"corr": {"method": "pearson", "bootstrap": 20, "seed": 1}, "cka": {"method": "cka"}},
    }
    wf = Workflow(root)
    wf.write_config(config)
    wf.run()
    return wf, {"external/IT": it, "external/V4": v4}


@pytest.mark.parametrize("folder, method", [("main", "spearman"), ("corr", "pearson")])
def test_noise_ceilings_and_rows_equal_direct_computations(done, folder, method):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    wf, groups = done
    so = read_second_order(wf.path(f"results/second_order/{folder}/matrix.h5"))
    labels = so["labels"]
    assert so["method"] == method
    for label, rdms in groups.items():
        g = labels.index(label)
        data = rsatoolbox.rdm.RDMs(np.stack([squareform(r) for r in rdms]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lower, upper = rsatoolbox.inference.boot_noise_ceiling(data, method=METHODS[method].rsatoolbox,
                                                                   rdm_descriptor="index")
        assert so["n_subjects"][g] == 3
        np.testing.assert_allclose([so["noise_ceiling_lower"][g], so["noise_ceiling_upper"][g]], [lower, upper],
                                   rtol=0, atol=1e-8)
        mean = squareform(rdms.mean(axis=0))  # the group's RDM: the mean of the subjects' dissimilarities
        np.testing.assert_allclose(read_rdm(wf.path(f"results/external/{label[9:]}.h5"))["condensed"], mean,
                                   rtol=1e-14, atol=0)
        for i, other in enumerate(labels):
            x = read_rdm(wf.path(f"results/{'external' if other.startswith('external/') else 'rdms/euclidean'}/"
                                 f"{other.split('/', 1)[1] if other.startswith('external/') else other}.h5"))
            if i != g:  # the matrix row of the group: 1 - a direct comparison with the mean RDM
                assert so["matrix"][g, i] == pytest.approx(1 - rdm_similarity(x["condensed"], mean, method),
                                                           abs=1e-10)
            evals = [rdm_similarity(x["condensed"], squareform(r), method) for r in rdms]
            assert so["subject_similarity"][i, g] == pytest.approx(np.mean(evals), abs=1e-10)
    single = labels.index("external/single")
    assert so["n_subjects"][single] == 0 and np.isnan(so["noise_ceiling_lower"][single])
    assert "ci_lower" in so if method == "pearson" else "ci_lower" not in so
    if method != "pearson":  # no bootstrap: the figure's error bars are the s.e.m. over subjects
        assert "subject_similarity_ci_lower" not in so
        return
    # bootstrap 20: the bars' intervals over stimuli, in the groups' columns only, around the bar values
    cols = [labels.index(label) for label in groups]
    lo, hi, value = so["subject_similarity_ci_lower"], so["subject_similarity_ci_upper"], so["subject_similarity"]
    assert np.isfinite(lo[:, cols]).all() and np.isfinite(hi[:, cols]).all()
    assert np.isnan(np.delete(lo, cols, axis=1)).all() and np.isnan(np.delete(hi, cols, axis=1)).all()
    assert (lo[:, cols] <= value[:, cols]).all() and (value[:, cols] <= hi[:, cols]).all()
    assert (hi[:, cols] - lo[:, cols]).min() > 0


def test_brain_figure_per_rdm_analysis_and_none_for_cka(done):
    wf, _ = done
    assert wf.path("results/figures/main/brain.png").stat().st_size > 0
    assert wf.path("results/figures/corr/brain.png").stat().st_size > 0
    assert not wf.path("results/figures/cka/brain.png").exists()
    assert "noise_ceiling_lower" not in read_second_order(wf.path("results/second_order/cka/matrix.h5"))


def test_report_shows_the_brain_figure_with_its_caption(done):
    wf, _ = done
    wf.run("--report", str(wf.path("report.zip")))
    with zipfile.ZipFile(wf.path("report.zip")) as z:
        names = z.namelist()
        text = "".join(z.read(n).decode(errors="replace") for n in names if n.endswith((".html", ".js")))
    assert len([n for n in names if n.endswith("/brain.png")]) == 2, names  # spearman and pearson analyses
    assert "Model layers versus brain regions" in text and "noise ceiling" in text
