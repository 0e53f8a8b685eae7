"""The shard store of per-stimulus activations (rsaflow.shards): digests, index, atomicity, prune."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from rsaflow import shards


def rows(n, m=5, seed=0):
    return np.random.default_rng(seed).standard_normal((n, m)).astype(np.float32)


def put(key, digests, values):
    with shards.ShardWriter(key, digests, {"config": {"k": 1}}, chunk_rows=2) as w:
        for lo in range(0, len(digests), 2):
            w.write(values[lo : lo + 2])
    return w.path


def test_image_digest_is_sha256_of_dtype_shape_and_bytes():
    images = np.random.default_rng(0).integers(0, 256, (5, 3, 4, 6), dtype=np.uint8)
    got = shards.image_digests(images, block=2)
    want = [hashlib.sha256(b"|u1 (3, 4, 6)\n" + im.tobytes()).hexdigest() for im in images]
    assert got == want
    edited = images.copy()
    edited[3, 0, 0, 0] ^= 1
    assert [a == b for a, b in zip(got, shards.image_digests(edited))] == [True, True, True, False, True]
    # the same bytes in another shape are another image
    assert shards.image_digests(images.reshape(5, 3, 6, 4))[0] != got[0]


def test_layer_key_ignores_only_the_stimulus_dependent_attributes():
    attrs = {"config": {"node": "fc"}, "code_sha256": "c", "weights_sha256": "w"}
    key = shards.layer_key(attrs)
    assert shards.layer_key({**attrs, "stimulus_digest": "s", "data_sha256": "d", "output_taken": "x"}) == key
    for name in attrs:
        assert shards.layer_key({**attrs, name: "other"}) != key


def test_index_serves_rows_in_any_order_across_shards():
    key = "ab" * 32
    a, b = rows(4, seed=1), rows(3, seed=2)
    put(key, ["d0", "d1", "d2", "d3"], a)
    put(key, ["d4", "d5", "d6"], b)
    index = shards.ShardIndex(key)
    assert "d6" in index and "d7" not in index
    want = np.concatenate([a, b])
    order = [6, 0, 3, 3, 5, 1]
    np.testing.assert_array_equal(index.rows([f"d{i}" for i in order]), want[order])
    assert len(index.used(["d0", "d5"])) == 2 and len(index.used(["d0", "d1"])) == 1


def test_no_partial_shard_is_ever_accepted():
    key = "cd" * 32
    with pytest.raises(RuntimeError, match="boom"):
        with shards.ShardWriter(key, ["d0", "d1"], {}) as w:
            w.write(rows(1))
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="1 rows written for 2 images"):
        with shards.ShardWriter(key, ["d0", "d1"], {}) as w:
            w.write(rows(1))
    assert shards.all_shards() == [] and list(shards.layer_dir(key).iterdir()) == []
    # a killed job's temporary file and a truncated or foreign file at a shard's name are ignored
    folder = shards.layer_dir(key)
    (folder / f".{shards.shard_key(['d0'])}.h5.tmp-99").write_bytes(b"\x89HDF partial")
    (folder / f"{shards.shard_key(['d0'])}.h5").write_bytes(b"\x89HDF truncated")
    path = put(key, ["d1"], rows(1))
    os.rename(path, folder / f"{shards.shard_key(['d2'])}.h5")  # a shard under another shard's key
    index = shards.ShardIndex(key)
    assert index.where == {}


def test_prune_removes_shards_no_activation_folder_names(tmp_path, capsys):
    root = shards.STORE_DIR
    used, unused = put("ef" * 32, ["d0", "d1"], rows(2)), put("ef" * 32, ["d2"], rows(1))
    other = put("01" * 32, ["d0"], rows(1))
    folder = root.parent / "activations" / "m"
    folder.mkdir(parents=True)
    shards.write_manifest(folder, {"l": [used]})
    assert json.loads((folder / shards.MANIFEST).read_text()) == {"l": [str(used.relative_to(shards.shards_root()))]}
    assert shards.summary() == {"objects": 3, "bytes": sum(p.stat().st_size for p in (used, unused, other)),
                                "unreferenced": 2}
    assert sorted(shards.prune(root, dry_run=True)) == sorted([unused, other])
    assert shards.all_shards() == sorted([used, unused, other])
    from rsaflow.cli import main  # rsaflow store: the shards are a kind; --prune removes them too

    assert main(["store", str(root)]) == 0
    assert "\nshards\t3\t" in capsys.readouterr().out
    assert main(["store", str(root), "--prune"]) == 0
    assert "# removed 2 objects" in capsys.readouterr().out
    assert shards.all_shards() == [used] and not shards.layer_dir("01" * 32).exists()
    # by age: every use touches a shard
    old = 40 * 86400
    os.utime(used, (os.path.getatime(used) - old, os.path.getmtime(used) - old))
    assert shards.prune(root, older_than_days=30, dry_run=True) == [used]
    shards.ShardIndex("ef" * 32).used(["d0"])
    assert shards.prune(root, older_than_days=30) == []
    (folder / shards.MANIFEST).unlink()  # the folder's files gone (rsaflow stale --remove)
    assert shards.prune(root) == [used] and shards.all_shards() == []
