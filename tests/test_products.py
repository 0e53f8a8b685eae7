"""rsaflow.products.gram against numpy's product, and the jobs' BLAS thread limits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rsaflow import products

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("rows,cols", [(5, None), (7, 3), (1, 40)])
def test_thin_gram_equals_numpy_and_ignores_thread_count(rows, cols):
    rng = np.random.default_rng(0)
    p = 3 * products.BLOCK + 123  # a partial last block
    a = rng.standard_normal((rows, p))
    b = None if cols is None else rng.standard_normal((cols, p))
    ref = a @ (a if b is None else b).T
    got = {t: products.gram(a, b, threads=t) for t in (1, 2, 3)}
    # summation order differs from numpy's: a few ulps of sum |a_i b_i| (~sqrt(P) for N(0,1) data)
    np.testing.assert_allclose(got[1], ref, rtol=0, atol=1e-10 * np.sqrt(p))
    for t in (2, 3):
        np.testing.assert_array_equal(got[t], got[1])  # bits do not depend on the threads
    if b is None:
        np.testing.assert_array_equal(got[1], got[1].T)  # exactly symmetric, like numpy's syrk


def test_wide_outputs_take_numpy_product():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((300, 2 * products.BLOCK))
    np.testing.assert_array_equal(products.gram(a), a @ a.T)  # not thin: numpy's own call, same bits


@pytest.mark.parametrize("threads", [1, 2])
def test_job_setup_limits_blas_to_the_rule_threads(threads):
    """rsaflow.jobs.common.setup(log, snakemake.threads) caps BLAS at exactly that many threads,
    and gram restores the cap after its single-threaded blocks."""
    code = (
        "import numpy as np\n"
        "from rsaflow.jobs.common import setup\n"
        f"setup(None, {threads})\n"
        "from rsaflow import products\n"
        "a = np.ones((3, 2 * products.BLOCK))\n"
        "before = products.blas_threads(); products.gram(a); print(before, products.blas_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}).stdout
    assert out.split() == [str(threads), str(threads)]
