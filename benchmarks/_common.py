"""Shared helpers for the benchmark scripts: imports, timing, thread limits and the result table.

Not a benchmark itself; each ``benchmarks/<name>.py`` imports it (the script's folder is on
``sys.path`` when run as ``python benchmarks/<name>.py``).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

try:  # an installed rsaflow, else the source tree of this checkout
    import rsaflow  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO / "src"))


def limit_threads(n: int) -> None:
    """Use ``n`` BLAS / OpenMP threads (numpy through threadpoolctl; torch separately)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass


def rsatoolbox_or_none():
    """The rsatoolbox module, or None (with a note) when it is not installed."""
    try:
        import rsatoolbox  # noqa: F401
        import rsatoolbox.data
        import rsatoolbox.rdm

        return rsatoolbox
    except ImportError as exc:
        print(f"note: rsatoolbox not installed ({exc}); its rows are skipped (pip install rsatoolbox)")
        return None


def traced_peak(fn) -> float:
    """Peak bytes live at once among those ``fn()`` allocates (tracemalloc traces from the call on, so
    its inputs do not count; NumPy reports its array buffers to tracemalloc: this is the arrays' peak,
    not the interpreter's RSS)."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def timeit(fn, repeats: int, warmup: int = 1):
    """Median wall time (time.perf_counter) of ``fn()`` over ``repeats`` runs; returns (median, last result)."""
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def timeit_interleaved(funcs: dict, repeats: int, warmup: dict | None = None) -> dict:
    """Median times of several functions measured round-robin (a, b, a, b, ...), so that load from
    other processes affects them alike. warmup: runs per name before timing (default 1 each).
    Returns {name: (median seconds, last result)}."""
    warmup = warmup or {}
    results, times = {}, {name: [] for name in funcs}
    for name, fn in funcs.items():
        for _ in range(warmup.get(name, 1)):
            results[name] = fn()
    for _ in range(repeats):
        for name, fn in funcs.items():
            t0 = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {name: (statistics.median(times[name]), results[name]) for name in funcs}


def run_tree(cmd: list[str], **popen_kw) -> tuple[float, float, str]:
    """Run ``cmd`` to its end: (wall seconds, peak RSS in MiB of the largest process in its tree, stdout).

    The peak comes from ``os.wait4``'s rusage: Linux reports the child's own maxrss or that of its
    largest waited-for descendant, whichever is larger (a ``snakemake`` run: Snakemake itself or
    one of its jobs), what ``/usr/bin/time`` prints; it is not sampled, so short peaks count.
    Raises RuntimeError with the tail of stderr when the command fails.
    """
    import subprocess
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, **popen_kw)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[:4]} exited {proc.returncode}:\n{err.read()[-3000:]}")
        return seconds, usage.ru_maxrss / 1024, out.read()


def versions(*names: str) -> str:
    out = [f"python {platform.python_version()}"]
    for name in names:
        try:
            from importlib.metadata import version

            out.append(f"{name} {version(name)}")
        except Exception:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}"


def fmt_s(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def print_grid(title: str, header: list[str], table: list[list[str]]) -> None:
    """A titled table of strings, columns padded to their widest cell."""
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
    print(f"\n== {title} ==")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))


def print_table(title: str, rows: list[dict]) -> None:
    """rows: dicts with keys what, ours, reference, ratio, target, met (strings or None)."""
    cols = ["what", "ours", "reference", "ratio", "target", "met"]
    print_grid(title, cols, [[str(r.get(c, "") if r.get(c) is not None else "-") for c in cols] for r in rows])


def met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "NO")


def write_cifar10(root: Path, per_class: int) -> Path:
    """A generated CIFAR10 test split in torchvision's on-disk format: the tests' writer
    (``tests/conftest.write_cifar10``: random pixels, seed 0, shuffled labels)."""
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import write_cifar10 as write

    return write(root, per_class=per_class)
