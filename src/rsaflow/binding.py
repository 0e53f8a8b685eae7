"""Files whose rows follow the stimulus order by the user's statement, tied to one stimulus set.

An external RDM without stimulus ids can only be used where its entry states ``order: stimuli``:
its rows follow ``results/stimuli/order.tsv``. That statement holds for one stimulus set, so the
first job that uses the file records a **binding** of the file's bytes (sha256) to the stimulus
set's digest, under ``results/store/bindings/<sha[:2]>/<sha>.json``. A later run with another
stimulus set (images added, swapped, re-selected) refuses the file, naming it, until the user
rebuilds it in the new order (new bytes: a new binding) or confirms that it still follows the
order with ``rsaflow bind FILE`` (:func:`bind`). Standard library only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rsaflow import atomic, store
from rsaflow.errors import ConfigError


def binding_path(file_sha: str, root=None) -> Path:
    """Where the binding of the file with sha256 ``file_sha`` is kept."""
    return store.store_root(root) / "bindings" / file_sha[:2] / f"{file_sha}.json"


def bind(path, file_sha: str, stimulus_digest: str, root=None) -> Path:
    """Record that the file ``path`` (bytes ``file_sha``) follows the order of stimulus set
    ``stimulus_digest``; replaces an earlier binding. Returns the binding's path."""
    where = binding_path(file_sha, root)
    record = {"file": str(path), "sha256": file_sha, "stimulus_digest": stimulus_digest,
              "bound_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic.write_text(where, json.dumps(record, sort_keys=True, indent=1) + "\n")
    return where


def bound_digest(file_sha: str, root=None) -> str | None:
    """The stimulus digest the file is bound to, or None where it is not bound."""
    try:
        return json.loads(binding_path(file_sha, root).read_text(encoding="utf-8"))["stimulus_digest"]
    except (OSError, ValueError, KeyError):
        return None


def check_or_bind(key: str, path, file_sha: str, stimulus_digest: str, root=None) -> bool:
    """Bind the file at its first use (returns True); pass where it is bound to ``stimulus_digest``
    (False); ConfigError at ``key`` naming the file where it is bound to another stimulus set."""
    old = bound_digest(file_sha, root)
    if old is None:
        bind(path, file_sha, stimulus_digest, root)
        return True
    if old != stimulus_digest:
        raise ConfigError(key, f"{path} has no stimulus ids and its entry says order: stimuli, but it was first "
                               f"used with another stimulus set (digest {old[:12]}, now {stimulus_digest[:12]}; "
                               "the order is results/stimuli/order.tsv): rebuild it in the current order or give "
                               f"it ids; if its rows do follow the current order.tsv, confirm with: rsaflow bind {path}")
    return False
