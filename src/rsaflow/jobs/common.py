"""Set-up shared by every job: logging to the rule's log file and thread limits."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Iterator

from rsaflow.errors import RsaflowError


def setup(log_path: str | None, threads: int) -> logging.Logger:
    """Send log records to ``log_path`` (and stderr) and cap BLAS/OpenMP threads at ``threads``."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=handlers, force=True)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    return logging.getLogger("rsaflow")


@contextlib.contextmanager
def job(snakemake) -> Iterator[logging.Logger]:
    """Run a rule's work with logging set up; a known error becomes one clear line and exit 1.

    RsaflowError (bad config, bad input file) is logged and printed without a traceback; any
    other exception propagates with its traceback (a bug), after being logged.
    """
    log = setup(snakemake.log[0] if snakemake.log else None, snakemake.threads)
    rule = getattr(snakemake, "rule", "job")
    try:
        yield log
    except RsaflowError as exc:
        log.error("%s", exc)
        raise SystemExit(f"rsaflow error in rule {rule}: {exc}") from None
    except Exception:
        log.exception("rule %s failed", rule)
        raise
