"""The second-order engine: K x K similarities of per-layer files, streamed, reused by content.

Modules, along the engine's seams (each imported by what needs it, nothing re-exported here):

- :mod:`~rsaflow.second_order.tiling`: which block of a tiled analysis an input belongs to
  (standard library only: the DAG build imports it);
- :mod:`~rsaflow.second_order.inputs`: the input files of one run, opened and checked once;
- :mod:`~rsaflow.second_order.blocks`: similarity blocks per kind of method (streamed products,
  thin rows, whole-RDM vectors, one comparison per pair);
- :mod:`~rsaflow.second_order.pairs`: the store of pairwise similarities and its index;
- :mod:`~rsaflow.second_order.tiles`: one tile of a split analysis and the assembly of tiles;
- :mod:`~rsaflow.second_order.ceilings`: noise ceilings of external groups;
- :mod:`~rsaflow.second_order.outputs`: the TSV outputs.

The jobs :mod:`rsaflow.jobs.second_order` and :mod:`rsaflow.jobs.second_order_tile` call them.
"""
