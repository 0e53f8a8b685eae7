"""Figures: stimulus grid, percentile RDM panel, second-order heatmap, MDS embeddings, model-versus-brain bars.

Plotting only, one module per kind of figure (:mod:`.stimuli`, :mod:`.second_order`, :mod:`.mds`,
:mod:`.brain`) over shared helpers (:mod:`.base`). What is drawn (order, colours, selections,
embeddings) comes from :mod:`rsaflow.figure_data`, which imports no matplotlib; the conventions
every figure shares are stated there. Every figure is written as PNG (for the report) and as PDF
(vector, for papers) beside it.
"""
