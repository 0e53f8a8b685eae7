"""rsaflow: representational similarity analysis of neural networks as a Snakemake workflow.

The package holds the logic; the workflow's scripts only unpack the ``snakemake`` object and call it.
Only the extraction code imports torch: :mod:`rsaflow.extract`, :mod:`rsaflow.layers`,
:mod:`rsaflow.checkpoints` and the source modules under :mod:`rsaflow.sources` (whose registry,
``rsaflow/sources/__init__.py``, does not), and the layer listing in :mod:`rsaflow.cli`.
"""

__version__ = "0.1.0"
