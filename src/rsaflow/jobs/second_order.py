"""Step ``second_order``: compare all RDMs of one analysis; write the K x K matrix as HDF5 and TSV.

Streaming. The K x K similarities are accumulated chunk by chunk of pairs: each chunk reads
pairs ``lo:hi`` of every RDM file (rsaflow.rdmfile.vector_chunk; ``gram_unit`` of the per-layer
``cka`` artifacts for the CKA family), so the job never holds whole vectors. The chunk
is sized by the byte budget ``chunk_mb`` of the analysis (config ``compare.chunk_mb``). Three
kinds of method cannot be streamed across pairs: kendall_tau_a (a sort per pair), shape and bures
(an SVD per pair of the per-layer ``shape`` factors, rsaflow.measures.fidelity_factors) and
cosine_cov, corr_cov (rsaflow.measures.cov_vector whitens the whole RDM: O(P) per RDM at a time,
then dot products accumulated into K x K). Peak memory, P the vector length (N (N - 1) / 2,
N^2 for the cka artifacts), K the RDMs::

    vector methods, cka*: about chunk_mb + 6 x 8 K^2 bytes + 0.6 MB per open file (K; files are
                          held open up to half the open-file limit) (+ 300 MB of libraries)
    kendall_tau_a:        about 10 x 8 P (two raw vectors at a time and the O(P log P) sort)
    shape, bures:         about 6 x 8 N^2 (two N x r factors, r <= N - 1, and the r x r SVD)
    cosine_cov, corr_cov: about chunk_mb / 2 (row vectors of N (N + 1) / 2 float64, at least one)
                          + 8 x 8 N^2 (one column vector and cov_vector's square transients)
    bootstrap/permutations on: + 8 K P (all condensed vectors), + what rsaflow.inference holds

Reads O(K P) (each file once per run for the vector methods), compute O(K^2 P); shape and
bures O(K^2 (N r^2 + r^3)) for ranks r, cosine_cov and corr_cov O(K N^2) per group of rows.
Each input file is opened and checked once per run (rsaflow.second_order.inputs.RunFiles: its record, vector
length, method scalars and reads all from that one handle). A block of at most
:data:`THIN_ROWS` rows (the row of an added RDM) reads each column file's vector in pieces of
up to chunk_mb / (rows + 1) (one row, the default 256 MB: the whole vector up to N = 5,793)
into one reused buffer and sums 1-D dot products: an added row costs about one read of every
file.

Incremental. Pairwise similarities live in the content store (rsaflow.store) as one object per
analysis run, kind ``pairs``: the sorted content keys of its RDMs (the ``content_key`` of each
RDM file: same key, same content), their K x K similarity matrix, the method and this job's
code digest. A run first looks for the object of exactly its key set; failing that, it merges
the similarities of every stored ``pairs`` object with the same method and code digest (found
through the store's index, ``<store>/pairs/index/<sha256(method, code)[:24]>/<key>.json``: each
object's content keys, written by atomic rename beside the object; objects without one are
indexed on first sight; only the objects used are opened), and computes only the pairs none of
them has: adding one RDM computes one row (O(K P) reads, O(K P)
work), removing one computes nothing. The log says ``pairs: reused R, computed C``. The object is
hard-linked to ``results/second_order/<analysis>/pairs.h5`` (so the store's prune keeps it while it is current).
The reuse key leaves out only the chunk size and the backend (``second_order.backend``, rsaflow.kernels),
which change sums by float rounding (~1e-16).

Optional inference on the RDMs (``bootstrap`` resamples of stimuli, ``permutations`` of stimulus
labels), written beside the matrix: ``ci_lower``, ``ci_upper``, ``boot_std``, ``p_values`` in the
HDF5, and every pair's values in ``inference.tsv`` (long format; header only when inference is off).
"""

from __future__ import annotations

import logging

import numpy as np

from rsaflow import h5io, kernels
from rsaflow.compare import dissimilarity as to_dissimilarity
from rsaflow.provenance import base_attrs
from rsaflow.results import check_same_stimuli
from rsaflow.second_order.blocks import DEFAULT_CHUNK_MB
from rsaflow.second_order.ceilings import condensed_stack, group_ceilings
from rsaflow.second_order.inputs import RunFiles, content_key
from rsaflow.second_order.outputs import write_inference_tsv, write_tsv
from rsaflow.second_order.pairs import PAIRS_KIND, pairwise_similarities

log = logging.getLogger(__name__)


def _similarities(records: list[dict], method: str, code: str, chunk_bytes: int, out_pairs, store_root,
                  files: RunFiles | None = None):
    """K x K similarities of ``records`` (one job: :func:`pairwise_similarities` of the distinct contents)."""
    keys = [content_key(r) for r in records]
    unique = list(dict.fromkeys(keys))  # identical content twice: compare it once
    first = {key: r["path"] for key, r in zip(reversed(keys), reversed(records))}
    log.info("second order (%s) of %d RDMs (%d distinct), chunks of %d MB", method, len(records), len(unique),
             chunk_bytes >> 20)
    usim = pairwise_similarities([first[key] for key in unique], unique, method, code, chunk_bytes, out_pairs,
                                 store_root, files)
    pos = np.array([unique.index(key) for key in keys])
    return usim[np.ix_(pos, pos)]


def _assembled(records: list[dict], tile_paths, method: str, code: str, digest: str, out_pairs):
    """K x K similarities from the tile files of rsaflow.jobs.second_order_tile; ``out_pairs`` gets
    them as a ``pairs`` file (not a store object: the tiles are the stored products)."""
    from rsaflow.second_order.tiles import assemble

    sim = assemble(records, tile_paths, method, digest)
    log.info("second order (%s) of %d RDMs assembled from %d tiles", method, len(records), len(tile_paths))
    if out_pairs is not None:
        keys = np.array([content_key(r) for r in records], dtype=object)
        h5io.write_h5(out_pairs, PAIRS_KIND, {"content_keys": keys, "similarity": sim},
                      {"method": method, "code_sha256": code})
    return sim


def write_second_order(rdm_paths, out_h5, out_tsv, spec: dict, code_files, out_inference=None,
                       out_pairs=None, store_root=None, tile_paths=None) -> tuple[np.ndarray, list[str]]:
    """1 - similarity (``spec['method']``) between every pair of RDMs, rows sorted by label.

    Streams the files in chunks of ``spec['chunk_mb']`` MB (default 256) and reuses stored pairwise
    similarities (see the module docstring). Writes ``out_h5`` (matrix, labels, depth, models and
    the inference arrays), ``out_tsv`` (the matrix), ``out_inference`` (long-format TSV, when
    given) and ``out_pairs`` (this run's ``pairs`` store object, when given). With ``tile_paths``
    (``compare.tiles``) the similarities are assembled from those tiles instead of computed.
    """
    method = spec["method"]
    inference = spec.get("bootstrap", 0) or spec.get("permutations", 0)
    chunk_bytes = int(spec.get("chunk_mb", DEFAULT_CHUNK_MB) * 2**20)
    files = RunFiles(method)  # each input opened and checked once for the run (closed after the similarities)
    records = sorted((files.record(p) for p in rdm_paths), key=lambda r: r["label"])
    labels = [r["label"] for r in records]
    if len(set(labels)) != len(labels):
        raise ValueError(f"duplicate RDM labels: {labels}")
    digest = check_same_stimuli(records)
    code = base_attrs(spec, code_files)["code_sha256"]
    with files, kernels.using(kernels.select(spec, "second_order")):  # second_order.backend (rsaflow.kernels)
        if tile_paths:
            sim = _assembled(records, tile_paths, method, code, digest, out_pairs)
        else:
            sim = _similarities(records, method, code, chunk_bytes, out_pairs, store_root, files)
    matrix = to_dissimilarity(sim, method)
    datasets = {
        "matrix": matrix,
        "labels": np.array(labels, dtype=object),
        "depth": np.array([r["depth"] for r in records], dtype=np.int64),
        "models": np.array([r["model"] for r in records], dtype=object),
    }
    rdms = condensed_stack(records) if inference else None  # (K, P): what inference streams, read once
    datasets.update(group_ceilings(records, method, spec.get("bootstrap", 0), spec.get("seed", 0),
                                   spec.get("ci", 0.95), rdms))
    if inference:
        from rsaflow.inference import bootstrap_second_order, permutation_test

        if spec.get("bootstrap", 0):
            log.info("bootstrap: %d resamples of the stimuli", spec["bootstrap"])
            boot = bootstrap_second_order(rdms, method, spec["bootstrap"], spec["seed"], spec.get("ci", 0.95))
            datasets.update(ci_lower=boot.lower, ci_upper=boot.upper, boot_std=boot.std)
            log.info("bootstrap: %d of %d resamples valid", boot.n_valid, spec["bootstrap"])
        if spec.get("permutations", 0):
            log.info("permutation test: %d relabellings", spec["permutations"])
            datasets["p_values"] = permutation_test(rdms, method, spec["permutations"], spec["seed"]).p_values
        del rdms
    h5io.write_h5(
        out_h5,
        "second_order",
        datasets,
        {**base_attrs(spec, code_files), "method": method, "stimulus_digest": digest},
    )
    write_tsv(out_tsv, labels, matrix)
    if out_inference is not None:
        write_inference_tsv(out_inference, labels, datasets)
    return matrix, labels
