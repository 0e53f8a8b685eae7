"""The torch path of the numeric kernels (config ``rdm.backend`` / ``second_order.backend: torch``).

Imports torch: only the jobs that asked for it load this module (through rsaflow.kernels); the
pure array modules (rsaflow.rdm, rsaflow.ranking, rsaflow.products, ...) stay torch-free. Every
kernel works in float64 on the chosen device (``cpu``, ``cuda`` or ``cuda:<index>``) and returns
NumPy arrays, with the same exactness as the NumPy path:

- :class:`GramAccumulator` (the RDM job's Gram matrix): G = sum over column blocks of B B^T by
  ``torch.addmm`` in float64 on the device; the blocks come checked, converted to float64 and
  (correlation) centred by rsaflow.rdm on the CPU, exactly as on the NumPy path, and rsaflow.rdm
  turns G into distances (near pairs recomputed from the full rows, exact zeros, symmetry) the
  same way. Only the summation order of the Gram entries differs from BLAS dsyrk: the RDM equals
  the NumPy path's to about 1e-13 of its largest distance (rsaflow.rdm's documented match to
  float64 ``pdist``), not bit for bit; it is a product of its own (its content key names the
  backend and the device, rsaflow.kernels).
- :func:`ranks_and_ties`: one ``torch.sort`` of the float64 values, tie runs where neighbouring
  sorted values differ under ``!=`` (NaN: each a run of its own, sorted last, as
  rsaflow.compare), each run's average rank (a + b + 1) / 2 computed from int64 positions
  (exact in float64). Equal to ``scipy.stats.rankdata(method='average')`` bit for bit, whatever
  the order a sort puts ties in (-0.0 and 0.0 included); the tie count is exact.
- Device memory: the Gram holds 8 N^2 B plus a block (a GPU with less free is a ConfigError naming
  ``rdm.device`` before any work); the ranking about :data:`RANK_BYTES` per value (less free: the
  NumPy ranking instead, the same bits).
- :func:`gram` (the second order's product V_rows V_cols^T): one float64 matmul on the device,
  made exactly symmetric for ``a @ a.T``; equal to rsaflow.products.gram up to summation order
  (a few ulps of the sum of |products|, the same as a change of ``compare.chunk_mb``).
"""

from __future__ import annotations

import numpy as np

from rsaflow.errors import ConfigError

try:  # optional for the rules that may load this module (rdm, second_order): rsaflow.kernels.select checks it
    import torch
except ImportError as exc:
    raise ImportError(f"the torch backend of rsaflow's kernels needs torch ({exc}); use backend: numpy") from exc


def resolve_device(choice: str, key: str) -> torch.device:
    """The torch device of a ``device`` config value (auto: cuda when torch sees a GPU, else cpu).

    ``cuda`` / ``cuda:<i>`` without a CUDA GPU visible to torch: one ConfigError naming ``key``.
    """
    choice = str(choice)
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(key, f"{choice} asked for, but torch {torch.__version__} sees no CUDA GPU here "
                                   "(CUDA_VISIBLE_DEVICES, the driver, a CPU-only torch build?); use auto or cpu")
        dev = torch.device(choice)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(key, f"{choice} asked for, but torch sees {torch.cuda.device_count()} CUDA GPU(s)")
        return dev
    raise ConfigError(key, f"{choice!r} is not allowed; allowed: auto, cpu, cuda, cuda:<index>")


def describe(device: torch.device) -> dict:
    """What a product computed here records (its content key): backend, device type, torch version."""
    return {"backend": "torch", "device": device.type, "torch": torch.__version__}


def _to(array: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64)).to(device)


#: Device bytes per value that :func:`ranks_and_ties` holds at its peak (values, sorted values, int64
#: order, flags, run bounds, repeated averages, ranks: about 7 arrays of 8 B).
RANK_BYTES = 7 * 8


def free_bytes(device: torch.device) -> int | None:
    """Free memory of a CUDA device (None for the CPU: not checked)."""
    return torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None


class GramAccumulator:
    """G = sum of B B^T over the (N, m) float64 blocks given to :meth:`add`, held on ``device``.

    A GPU too small for G and one block (``block_hint`` units; 8 N^2 + 16 N block bytes): a
    ConfigError naming ``key`` (rdm.device) before anything is allocated."""

    def __init__(self, n: int, device: torch.device, key: str = "rdm.device", block_hint: int = 8192):
        self.device = device
        need, free = 8 * n * n + 16 * n * block_hint, free_bytes(device)
        if free is not None and need > free:
            raise ConfigError(key, f"the {n} x {n} float64 Gram matrix and a block need {need / 2**30:.1f} GiB, "
                                   f"{device} has {free / 2**30:.1f} GiB free; use device: cpu or backend: numpy")
        self.g = torch.zeros((n, n), dtype=torch.float64, device=device)

    def add(self, block: np.ndarray) -> None:
        t = _to(block, self.device)
        self.g.addmm_(t, t.T)
        del t

    def result(self) -> np.ndarray:
        """G as a C-ordered (N, N) float64 NumPy array (every entry; rsaflow.rdm reads j <= i)."""
        out = self.g.cpu().numpy() if self.device.type != "cpu" else self.g.numpy()
        self.g = None
        return out


def ranks_and_ties(values: np.ndarray, device: torch.device, fallback=None) -> tuple[np.ndarray, int]:
    """``(ranks, tied_pairs)`` of a 1-D array on ``device``: the ranks of
    ``scipy.stats.rankdata(values, method='average')`` bit for bit (float64), tied_pairs the
    number of pairs of equal entries (NaN: each a group of its own), as rsaflow.compare.ranks_and_ties.
    ``fallback(values)`` (the NumPy ranking: the same bits) when the device lacks :data:`RANK_BYTES`
    per value of free memory."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"ranks_and_ties needs a 1-D array, got shape {values.shape}")
    n = values.size
    if n == 0:
        return np.empty(0), 0
    free = free_bytes(device)
    if fallback is not None and free is not None and RANK_BYTES * n > free:
        return fallback(values)
    v = _to(values, device)
    ordered, order = torch.sort(v)
    del v
    new = torch.ones(n, dtype=torch.bool, device=device)
    torch.ne(ordered[1:], ordered[:-1], out=new[1:])
    del ordered
    bounds = torch.cat([torch.nonzero(new).flatten(), torch.tensor([n], device=device)])
    del new
    lengths = bounds[1:] - bounds[:-1]
    average = (bounds[:-1] + bounds[1:] + 1).to(torch.float64) * 0.5  # exact: integers < 2^53, halved
    ties = int((lengths * (lengths - 1) // 2).sum().item())
    ranks = torch.empty(n, dtype=torch.float64, device=device)
    ranks[order] = torch.repeat_interleave(average, lengths)
    del order, average, lengths, bounds
    return ranks.cpu().numpy(), ties


def gram(a: np.ndarray, b: np.ndarray | None, device: torch.device) -> np.ndarray:
    """``a @ b.T`` (``a @ a.T`` when b is None, then exactly symmetric) in float64 on ``device``."""
    ta = _to(a, device)
    tb = ta if b is None else _to(b, device)
    out = (ta @ tb.T).cpu().numpy()
    del ta, tb
    if b is None:
        out = np.triu(out) + np.triu(out, 1).T
    return out
