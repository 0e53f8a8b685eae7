"""Snakemake's record of a finished job, with each input hashed once per job instead of per output.

After a job, Snakemake (9.x, ``Persistence.finished``) writes one metadata record per output, and
for each record it hashes every input again (``_IOFile.checksum``, sha256 of the bytes, up to the
profile's ``max-checksum-file-size``). A job of O outputs and I inputs costs O x I file hashes where
I suffice: the second order of 81 RDM files of 5 MB (N = 800) with 4 outputs hashed 1.6 GB, 2.2 s
on a slow 2-core VM, more than its own comparison; the job of 80 external RDMs hashed the stimulus
file 80 times. (A folder input, as a model's activations, is not hashed at all.)

:func:`hoist_input_checksums` memoises ``checksum`` for the duration of one ``finished`` call only.
Within it the inputs cannot change: the job is done and its inputs are finished outputs of other
jobs. The records hold the same checksums (tests/test_snakemake_checksums.py reads them back
against ``hashlib``). Where Snakemake's internals are not what this expects, nothing is patched and
Snakemake runs as it is, only slower: the test fails for the pinned Snakemake range, so an upgrade
that moves them is seen. Upstream, the loop's checksums would simply be computed before it.
Standard library only (DAG-build time code).
"""

from __future__ import annotations

import contextvars
import functools
import inspect

_MEMO: contextvars.ContextVar[dict | None] = contextvars.ContextVar("rsaflow_checksum_memo", default=None)
_MARK = "__rsaflow_hoisted__"


def hoist_input_checksums() -> bool:
    """Patch Snakemake in this process (once); True if it is patched, False where its internals
    differ and nothing was changed. It expects ``finished`` of
    ``snakemake.persistence.PersistenceBase`` (``Persistence`` in older 9.x releases) and
    ``snakemake.io._IOFile.checksum``, both coroutine functions."""
    try:
        import snakemake.persistence as persistence
        from snakemake.io import _IOFile
    except ImportError:
        return False
    # PersistenceBase in recent 9.x releases (file and database back ends), Persistence before
    Persistence = getattr(persistence, "PersistenceBase", None) or getattr(persistence, "Persistence", None)
    finished, checksum = getattr(Persistence, "finished", None), getattr(_IOFile, "checksum", None)
    if getattr(finished, _MARK, False):
        return True
    if not (inspect.iscoroutinefunction(finished) and inspect.iscoroutinefunction(checksum)):
        return False

    @functools.wraps(finished)
    async def finished_once(self, job, *args, **kwargs):
        token = _MEMO.set({})
        try:
            return await finished(self, job, *args, **kwargs)
        finally:
            _MEMO.reset(token)

    @functools.wraps(checksum)
    async def checksum_once(self, *args, **kwargs):
        memo = _MEMO.get()
        if memo is None:
            return await checksum(self, *args, **kwargs)
        key = (str(self), args, tuple(sorted(kwargs.items())))
        if key not in memo:
            memo[key] = await checksum(self, *args, **kwargs)
        return memo[key]

    setattr(finished_once, _MARK, True)
    Persistence.finished, _IOFile.checksum = finished_once, checksum_once
    return True
