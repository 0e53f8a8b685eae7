"""Second order split into tile jobs (``compare.tiles``): assembled tiles equal the one-job second
order to 1e-12; adding an RDM changes only its block's tiles and computes only its entries."""

import hashlib
import logging
import re

import numpy as np
import pytest

from rsaflow.errors import InputFileError
from rsaflow.jobs.second_order import write_second_order
from rsaflow.jobs.second_order_tile import write_tile
from rsaflow.results import read_second_order
from rsaflow.second_order.tiling import block_of, tile_members

from test_second_order import METHODS_RDM, activations, write_rdms

B = 3


def run_tiles(tmp_path, paths, labels, method, tag):
    """Every tile (i <= j, both blocks non-empty, as the workflow plans them) of the blocks of
    ``labels``; returns the tile files and the computed counts."""
    members = tile_members(labels, B)
    full = [i for i in range(B) if members[i]]
    tiles, computed = [], {}
    for n, i in enumerate(full):
        for j in full[n:]:
            out = tmp_path / f"{tag}_tile_{i}_{j}.h5"
            write_tile([paths[a] for a in members[i]], [paths[b] for b in members[j]], out, {"method": method},
                       "code")
            tiles.append(out)
    return tiles, computed


def second_order(tmp_path, paths, method, tag, tiles=None):
    out = tmp_path / f"{tag}.h5"
    write_second_order(paths, out, tmp_path / f"{tag}.tsv", {"method": method}, "code",
                       out_pairs=tmp_path / f"{tag}_pairs.h5", tile_paths=tiles)
    return read_second_order(out)["matrix"]


def test_blocks_are_stable_and_cover_every_label():
    labels = [f"m{i}/l" for i in range(50)]
    members = tile_members(labels, 4)
    assert sorted(sum(members, [])) == list(range(50))
    # a block depends on the label only: adding labels moves none of the others
    more = tile_members(labels + ["new/l"], 4)
    for b in range(4):
        assert [i for i in more[b] if i < 50] == members[b]
    assert all(block_of(lab, 4) == b for b in range(4) for lab in (labels[i] for i in members[b]))


def test_a_models_layers_share_a_block_and_external_rdms_stand_alone():
    """Adding a layer reruns the model's extraction and all its RDM jobs (no early cutoff in
    Snakemake): with the whole model in one block, only that block's tiles see changed inputs."""
    for b in (2, 5, 16):
        for model in ("resnet18", "alexnet", "m7"):
            assert len({block_of(f"{model}/{layer}", b) for layer in ("a", "layer3", "features.12", "x/y")}) == 1
            assert block_of(f"{model}/a", b) == int(hashlib.sha256(model.encode()).hexdigest()[:16], 16) % b
    externals = {block_of(f"external/brain{i}", 16) for i in range(40)}
    assert len(externals) > 4  # each external RDM hashed on its own label, not all on "external"
    assert block_of("external/v1", 16) == int(hashlib.sha256(b"external/v1").hexdigest()[:16], 16) % 16


@pytest.mark.parametrize("method", METHODS_RDM)
def test_assembled_tiles_equal_the_one_job_second_order(tmp_path, method):
    paths = write_rdms(tmp_path, activations(8), tie_round=1 if method == "kendall_tau_a" else None)
    labels = [f"m{i}/l" for i in range(8)]
    tiles, _ = run_tiles(tmp_path, paths, labels, method, "t")
    np.testing.assert_allclose(second_order(tmp_path, paths, method, "tiled", tiles),
                               second_order(tmp_path, paths, method, "cold"), rtol=0, atol=1e-12)


def computed_entries(caplog):
    return sum(int(m) for m in re.findall(r"tile: reused \d+, computed (\d+)", caplog.text))


def test_adding_an_rdm_computes_only_its_entries(tmp_path, caplog):
    acts = activations(10)
    paths = write_rdms(tmp_path, acts)
    labels = [f"m{i}/l" for i in range(10)]
    with caplog.at_level(logging.INFO):
        run_tiles(tmp_path, paths[:9], labels[:9], "spearman", "before")
        assert computed_entries(caplog) == sum(
            len(a) * len(b) for i, a in enumerate(tile_members(labels[:9], B)) for b in tile_members(labels[:9], B)[i:])
        caplog.clear()
        tiles, _ = run_tiles(tmp_path, paths, labels, "spearman", "after")
    # the new RDM's entries: one per RDM of each tile of its row (its own block counted once)
    block = tile_members(labels, B)[block_of(labels[9], B)]
    assert computed_entries(caplog) == 10 + len(block) - 1
    np.testing.assert_allclose(second_order(tmp_path, paths, "spearman", "tiled", tiles),
                               second_order(tmp_path, paths, "spearman", "cold"), rtol=0, atol=1e-12)


def test_assembly_refuses_a_stale_or_missing_tile(tmp_path):
    paths = write_rdms(tmp_path, activations(6))
    labels = [f"m{i}/l" for i in range(6)]
    tiles, _ = run_tiles(tmp_path, paths, labels, "spearman", "t")
    with pytest.raises(ValueError, match="no tile holds the pair"):
        second_order(tmp_path, paths, "spearman", "holes", tiles[:-1])
    changed = write_rdms(tmp_path, activations(6, seed=5), names=[f"m{i}" for i in range(6)])
    with pytest.raises(InputFileError, match="changed since"):
        second_order(tmp_path, changed, "spearman", "stale", tiles)
