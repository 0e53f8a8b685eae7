"""compare.tiles end to end: the tiled second order equals the one-job one; adding a model reruns
only the tiles of its block and computes only the new RDM's entries; inference with tiles is refused."""

import copy
import re

import numpy as np
import pytest

from conftest import Workflow
from rsaflow.jobs.second_order_tile import block_of, tile_members
from rsaflow.results import read_second_order

pytestmark = pytest.mark.slow

B = 3


def config():
    return {
        "stimuli": {"source": "digits", "per_class": 3, "seed": 0},
        "models": {"resnet18": {"weights": "none", "layers": {"nodes": ["layer1", "layer2", "layer3", "layer4", "avgpool"], "reduce": "mean"}},
                   "squeeze": {"arch": "squeezenet1_1", "weights": "none", "layers": {"features": "features.12"}}},
        "extraction": {"batch_size": 16, "device": "cpu", "threads": 1, "gpu": False},
        "analyses": {"tiled": {"method": "spearman", "tiles": B},
                     "tiled_cka": {"method": "cka", "tiles": B}, "cka": {"method": "cka"}},
    }


def labels_of(wf, analysis):
    return read_second_order(wf.path(f"results/second_order/{analysis}/matrix.h5"))["labels"]


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    wf = Workflow(tmp_path_factory.mktemp("tiles"))
    wf.write_config(config())
    wf.run()
    return wf


def tiles_planned(jobs):
    return {out for rule, out in jobs if rule == "second_order_tile"}


@pytest.mark.parametrize("tiled, single", [("tiled", "main"), ("tiled_cka", "cka")])
def test_tiled_equals_one_job(done, tiled, single):
    a = read_second_order(done.path(f"results/second_order/{tiled}/matrix.h5"))
    b = read_second_order(done.path(f"results/second_order/{single}/matrix.h5"))
    assert a["labels"] == b["labels"] and len(a["labels"]) == 6
    np.testing.assert_allclose(a["matrix"], b["matrix"], rtol=0, atol=1e-12)
    full = [i for i, m in enumerate(tile_members(a["labels"], B)) if m]
    tiles = sorted(p.name for p in done.path(f"results/second_order/{tiled}/tiles").glob("*.h5"))
    assert tiles == sorted(f"{i}_{j}.h5" for n, i in enumerate(full) for j in full[n:])


def test_adding_a_model_reruns_only_its_block_and_computes_only_its_entries(done):
    new = copy.deepcopy(config())
    new["models"]["mobile"] = {"arch": "mobilenet_v3_small", "weights": "none", "layers": {"pool": "avgpool"}}
    labels = labels_of(done, "tiled") + ["mobile/pool"]
    members = tile_members(labels, B)
    block = block_of("mobile/pool", B)
    full = [i for i, m in enumerate(members) if m]
    expected = {f"results/second_order/tiled/tiles/{min(block, j)}_{max(block, j)}.h5" for j in full}
    planned = tiles_planned(done.planned_with(new))
    assert {p for p in planned if "/tiled/" in p} == expected
    done.write_config(new)
    done.run()
    computed = 0
    for path in done.path("results/logs/second_order_tile/tiled").glob("*.log"):
        computed += sum(int(c) for c in re.findall(r"tile: reused \d+, computed (\d+)", path.read_text()))
    # the new RDM against every RDM: its row and column of the tiles of its block (its own diagonal
    # tile holds both orientations: 2 R - 1 entries); logs of tiles that did not rerun are the first run's
    first_run = sum(len(members[i]) * len(members[j]) for n, i in enumerate(full) for j in full[n:]
                    if block not in (i, j))
    assert computed - first_run == len(labels) + len(members[block]) - 1
    a = read_second_order(done.path("results/second_order/tiled/matrix.h5"))
    b = read_second_order(done.path("results/second_order/main/matrix.h5"))
    np.testing.assert_allclose(a["matrix"], b["matrix"], rtol=0, atol=1e-12)
    assert done.planned() == set()


def test_tiles_with_inference_are_a_config_error(tmp_path):
    wf = Workflow(tmp_path)
    bad = config()
    bad["analyses"]["tiled"]["bootstrap"] = 10
    wf.write_config(bad)
    proc = wf.run("-n", check=False)
    assert proc.returncode != 0
    assert "config error at analyses.tiled.tiles: bootstrap and permutations" in proc.stdout + proc.stderr
