"""Snakemake's record of a finished job hashes each input once per job (rsaflow.snakemake_checksums),
and the records hold the same checksums as without it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from conftest import REPO
from rsaflow.snakemake_checksums import hoist_input_checksums

pytest.importorskip("snakemake")

# One job of 3 outputs and 2 inputs; every file hash Snakemake makes is counted (hashlib.file_digest,
# what _IOFile.checksum calls) and written out when the run succeeds.
SNAKEFILE = """
import hashlib, json, os, sys
sys.path.insert(0, {src!r})
from rsaflow.snakemake_checksums import hoist_input_checksums

if os.environ.get("HOIST") == "1":
    assert hoist_input_checksums()
HASHED = []
_digest = hashlib.file_digest


def counting(fileobj, *args, **kwargs):
    HASHED.append(os.path.basename(getattr(fileobj, "name", "?")))
    return _digest(fileobj, *args, **kwargs)


hashlib.file_digest = counting


rule job:
    input:
        "a.txt",
        "b.txt",
    output:
        "x.txt",
        "y.txt",
        "z.txt",
    run:
        for path in output:
            open(path, "w").write(path)


onsuccess:
    open("hashed.json", "w").write(json.dumps(HASHED))
"""


def test_the_patch_applies_to_the_installed_snakemake():
    """Fails where a Snakemake release moved the internals it wraps (then it patches nothing)."""
    assert hoist_input_checksums() is True
    assert hoist_input_checksums() is True  # once; a second call finds it in place


def _run(tmp_path, hoist: bool):
    work = tmp_path / ("hoisted" if hoist else "plain")
    work.mkdir()
    (work / "Snakefile").write_text(SNAKEFILE.format(src=str(REPO / "src")))
    (work / "a.txt").write_bytes(b"first input\n" * 1000)
    (work / "b.txt").write_bytes(bytes(range(256)) * 40)
    run = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "-s", "Snakefile"], cwd=work,
                         capture_output=True, text=True, env={"HOIST": "1" if hoist else "0", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-3000:]
    records = {}
    for path in (work / ".snakemake" / "metadata").iterdir():
        record = json.loads(path.read_text())
        records[path.name] = {k: v.split(":", 1)[-1] for k, v in record["input_checksums"].items()}
    return json.loads((work / "hashed.json").read_text()), records, work


def test_each_input_is_hashed_once_per_job_and_every_record_has_its_sha256(tmp_path):
    hashed, records, work = _run(tmp_path, hoist=True)
    expected = {name: hashlib.sha256((work / name).read_bytes()).hexdigest() for name in ("a.txt", "b.txt")}
    assert sorted(hashed) == ["a.txt", "b.txt"]
    assert len(records) == 3 and all(r == expected for r in records.values())
    # without it, Snakemake hashes them once per output, and records the same
    plain_hashed, plain_records, _ = _run(tmp_path, hoist=False)
    assert sorted(plain_hashed) == ["a.txt"] * 3 + ["b.txt"] * 3
    assert sorted(plain_records.values(), key=str) == sorted(records.values(), key=str)
