"""rsaflow: representational similarity analysis of neural networks as a Snakemake workflow.

The package holds the logic; the workflow's scripts only unpack the ``snakemake`` object and call it.
Only :mod:`rsaflow.extract` (and the layer listing in :mod:`rsaflow.cli`) import torch.
"""

__version__ = "0.1.0"
