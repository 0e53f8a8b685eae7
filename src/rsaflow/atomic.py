"""Atomic writes of small text files (standard library only; also used at DAG-build time).

A file appears under its final name only when it is complete: it is written to a temporary name
in the same folder and renamed (``os.replace`` is atomic on POSIX filesystems, shared ones too).
"""

from __future__ import annotations

import os
from pathlib import Path


def write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, creating its folder; a failed write leaves
    ``path`` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
