"""Matrix products that keep their speed when the cores are shared (BLAS under contention).

OpenBLAS splits one product among its threads and makes them meet at many barriers inside the
call; when a core is taken by another process (two jobs on a 2-core node, a cluster node shared
with other jobs) each barrier waits for a time slice, and the cold second order's product went
from 0.6 s to 5-13 s. A *thin* product, ``A @ B.T`` with a small output (at most
:data:`THIN_OUTPUT` entries) and a long inner dimension (the K x K second order over P pairs), is
computed here instead as a sum over fixed column blocks of :data:`BLOCK` pairs, each block one
single-threaded BLAS call, the blocks spread over ``threads`` Python threads (numpy releases the
GIL in BLAS). The threads meet once per wave of blocks, not inside a call, so a busy core delays
one block, not every barrier. The block partials are added in block order, so the bits of the
result depend on the shapes only, never on the thread count or on which thread ran which block.
Larger products keep the threaded BLAS call (their threads have enough work between barriers).

The BLAS thread limit of a job is set once by rsaflow.jobs.common.setup from the rule's
``threads:`` (``snakemake.threads``); :func:`gram` reads it (threadpoolctl) and lowers it to 1
only while its blocks run. Never imports torch.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from rsaflow import kernels

#: Outputs of at most this many entries count as thin (K = 256 for a K x K block).
THIN_OUTPUT = 256 * 256
#: Pairs (columns) per single-threaded block of a thin product.
BLOCK = 1 << 15


def blas_threads() -> int:
    """The BLAS thread limit in force (threadpoolctl; 1 when no BLAS is found)."""
    from threadpoolctl import threadpool_info

    found = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    return max(found, default=1)


def gram(a: np.ndarray, b: np.ndarray | None = None, threads: int | None = None) -> np.ndarray:
    """``a @ b.T`` (``a @ a.T`` when b is None) for 2-D float64 ``a`` (R x P), ``b`` (C x P).

    Thin outputs (R C <= THIN_OUTPUT): the sum of ``a[:, s] @ b[:, s].T`` over blocks s of
    :data:`BLOCK` columns, each on one BLAS thread, ``threads`` blocks at a time (default: the
    job's BLAS limit, :func:`blas_threads`), partials added in block order (bits independent of
    ``threads``). Equals ``a @ b.T`` up to summation order (a few ulps of the sum of |products|).
    Memory: ``threads`` partials of R x C float64 beside the output. Inside
    ``rsaflow.kernels.using(k)`` with a torch backend: ``k.gram`` instead (rsaflow.torch_kernels.gram,
    the same up to summation order).
    """
    other = kernels.active().gram  # another backend's product, set by the job (rsaflow.kernels.using)
    if other is not None:
        return other(a, b)
    same = b is None
    b = a if same else b
    if a.shape[0] * b.shape[0] > THIN_OUTPUT or a.shape[1] <= BLOCK:
        return a @ b.T
    threads = blas_threads() if threads is None else int(threads)
    from threadpoolctl import threadpool_limits

    starts = range(0, a.shape[1], BLOCK)

    def block(s: int) -> np.ndarray:
        return a[:, s : s + BLOCK] @ b[:, s : s + BLOCK].T

    out = np.zeros((a.shape[0], b.shape[0]))
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(max(1, threads)) as pool:
        wave = max(1, threads)
        for w in range(0, len(starts), wave):  # at most `threads` partials held at a time
            for part in pool.map(block, starts[w : w + wave]):
                out += part
    if same:  # a @ a.T is symmetric; the block sums are too (each block's product is)
        out = np.triu(out) + np.triu(out, 1).T
    return out
