"""Command line: ``rsaflow layers ARCH`` lists a model's graph nodes with their output shapes.

Usage::

    rsaflow layers resnet50                  # every node: name, output shape for one 224x224 image
    rsaflow layers --source timm convnext_atto           # a timm model's graph nodes
    rsaflow layers --source huggingface ./dinov2-small   # module names (hooks) of a saved model
    rsaflow layers --source python models/net.py:build   # your factory's module (its code runs)
    rsaflow layers --source open_clip --list             # a source's architectures
    rsaflow layers vit_b_16 --filter encoder  # nodes whose name contains 'encoder'
    rsaflow layers resnet50 --filter 'layer?.?.relu_2'  # what the glob `layers: "layer?.?.relu_2"` selects
    rsaflow layers --list                     # the torchvision classification architectures
    rsaflow store                             # objects in results/store per kind, size, unreferenced
    rsaflow store --prune [--dry-run]         # remove objects no file under results/ links to
    rsaflow store --prune --older-than 30     # ... or not used for 30 days (stores that had to copy)
    rsaflow stale [--remove] [-- SNAKEMAKE ARGS]  # results the current config no longer produces

(``python -m rsaflow.cli`` works without installing the entry point.)
The model is built untrained (no download; a Hugging Face model from its config); shapes do not
depend on weights. Sources with their own transform (timm, huggingface, open_clip) get a blank
SIZE x SIZE image through it, so shapes are those the model sees in the workflow.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys

#: Characters that make a ``--filter`` a glob pattern (as in the config's ``layers:``).
GLOB_CHARS = "*?["


def matches(name: str, pattern: str | None) -> bool:
    """Whether node ``name`` passes ``--filter pattern``.

    A pattern with a glob character (``*``, ``?``, ``[``) is matched as ``layers:`` in the config
    matches it (:func:`fnmatch.fnmatchcase` over the whole name, case-sensitive); any other text
    is a case-sensitive substring test. ``None`` passes every name.
    """
    if pattern is None:
        return True
    if any(c in pattern for c in GLOB_CHARS):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def layer_table(arch: str, size: int = 224, pattern: str | None = None,
                source: str = "torchvision") -> tuple[str, list[tuple[str, str]]]:
    """(``fx`` or ``modules``, [(layer name, output shape)]) for every layer of ``arch`` from
    ``source`` that passes ``pattern`` (see :func:`matches`), in execution (fx) or registration
    (modules) order; empty when none does."""
    import torch

    from rsaflow import sources
    from rsaflow.extract import build_model
    from rsaflow.layers import Built, layer_names, make_extractor

    record = sources.get(source, "--source")
    weights = "none" if record.default_weights is None else record.default_weights
    built = build_model({"source": source, "arch": arch, "weights": "none" if weights == "pretrained" else weights,
                         "seed": 0}, "arch")
    layers_by, names = layer_names(built.model, record.tracing)
    names = [n for n in names if matches(n, pattern)]
    if not names:
        return layers_by, []
    x = torch.zeros(1, 3, size, size)
    if built.device_transform is None:  # the source's own transform decides the input size
        x = built.cpu_transform(torch.zeros(1, 3, size, size, dtype=torch.uint8))
    if layers_by == "modules":
        outputs = _module_outputs(built, names, x)
    else:
        with torch.inference_mode():
            outputs = make_extractor(Built(built.model, {}, call=built.call), layers_by, names)(x)
    rows = []
    for name in names:
        out = outputs.get(name)
        if isinstance(out, torch.Tensor):
            shape = "x".join(str(d) for d in out.shape)
        else:  # a non-tensor node (a shape, a tuple), or a module that did not run
            shape = type(out).__name__ if name in outputs else "not-run"
        rows.append((name, shape))
    return layers_by, rows


def _module_outputs(built, names: list[str], x) -> dict:
    """Every named module's output (first tensor) in one forward pass; a module that does not run is left out."""
    import torch

    from rsaflow.layers import first_tensor

    modules, out = dict(built.model.named_modules()), {}
    for name in names:
        def hook(module, args, output, name=name):
            try:
                out[name] = first_tensor(output)[0]
            except ValueError:
                pass
        modules[name].register_forward_hook(hook)
    with torch.inference_mode():
        built.call(built.model, x)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rsaflow", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_layers = sub.add_parser("layers", help="list a model's graph nodes (layer names) and output shapes")
    p_layers.add_argument("arch", nargs="?", help="architecture, e.g. resnet50 (with --source: a timm or OpenCLIP "
                          "name, a Hugging Face id or directory, a python factory file.py:function)")
    p_layers.add_argument("--source", default="torchvision",
                          help="torchvision (default), timm, huggingface, open_clip or python (docs/models.md)")
    p_layers.add_argument("--size", type=int, default=224, help="input image size (default 224)")
    p_layers.add_argument("--filter", default=None, help="only nodes matching this glob pattern (as in layers: in the config, e.g. 'layer?.?.relu_2') "
                               "or, without * ? [, containing this text")
    p_layers.add_argument("--list", action="store_true", help="list the source's architectures")
    p_store = sub.add_parser("store", help="summarise or prune the content-addressed store of reusable products")
    p_store.add_argument("root", nargs="?", default=None, help="the store folder (default results/store)")
    p_store.add_argument("--prune", action="store_true", help="remove objects no result links to any more")
    p_store.add_argument("--older-than", type=float, default=None, metavar="DAYS",
                         help="with --prune: remove objects not used for DAYS days instead")
    p_store.add_argument("--dry-run", action="store_true", help="with --prune: only list what would be removed")
    p_stale = sub.add_parser("stale", help="list (or --remove) results that the current config no longer produces")
    p_stale.add_argument("--remove", action="store_true", help="delete them (then: rsaflow store --prune)")
    p_stale.add_argument("snakemake_args", nargs=argparse.REMAINDER,
                         help="after --: the arguments you run snakemake with (-s, -d, --configfile, ...)")
    args = parser.parse_args(argv)
    if args.command == "store":
        return store_command(args)
    if args.command == "stale":
        return stale_command(args)

    from rsaflow.errors import ConfigError, RsaflowError

    try:
        if args.list or not args.arch:
            return list_archs(args.source)
        layers_by, rows = layer_table(args.arch, args.size, args.filter, args.source)
    except ConfigError as exc:  # the key is the command line's: name the architecture instead
        print(f"rsaflow: {args.arch or args.source}: {str(exc)[len(f'config error at {exc.key}: '):]}", file=sys.stderr)
        return 2
    except RsaflowError as exc:
        print(f"rsaflow: {exc}", file=sys.stderr)
        return 2
    if not rows:
        how = ("glob pattern", "matched against whole names") if any(c in args.filter for c in GLOB_CHARS) \
            else ("text", "a substring test")
        print(f"rsaflow: no node of {args.arch} matches the {how[0]} {args.filter!r} ({how[1]}, case-sensitive; "
              f"list all with: {_record(args.source).layers_command(args.arch)})", file=sys.stderr)
        return 1
    width = max(len(n) for n, _ in rows)
    kind = "nodes" if layers_by == "fx" else "modules (forward hooks; torch.fx cannot trace this model)"
    print(f"# {args.arch}: {len(rows)} {kind}; output shape for one {args.size}x{args.size} image (batch x ...)")
    for name, shape in rows:
        print(f"{name:<{width}}  {shape}")
    return 0


def _record(source: str):
    from rsaflow import sources

    return sources.get(source, "--source")


def list_archs(source: str) -> int:
    """``rsaflow layers --list``: the source's architectures, or what its ``arch`` is where it has no list."""
    import importlib

    record = _record(source)
    names = importlib.import_module(record.impl).archs()
    if names is None:
        print(f"rsaflow: source {source} has no list of architectures; its arch is {record.arch_help}", file=sys.stderr)
        return 1
    print("\n".join(names))
    return 0


def current_files(summary: str) -> tuple[set[str], set[str]]:
    """Output files (and directory outputs) and log files named by ``snakemake --summary`` output."""
    files: set[str] = set()
    for line in summary.splitlines()[1:]:
        cells = line.split("\t")
        if len(cells) >= 4:
            files.add(cells[0])
            files.update(p.strip() for p in cells[3].split(",") if p.strip() not in ("", "-"))
    return files, {f.rstrip("/") + "/" for f in files}


def stale_files(workdir, summary: str) -> list:
    """Files under ``workdir``/results that no job of the current DAG writes (outputs, directory
    outputs, logs), leaving out the store and run-time benchmarks."""
    from pathlib import Path

    workdir = Path(workdir)
    files, folders = current_files(summary)
    out = []
    for path in sorted((workdir / "results").rglob("*")):
        rel = path.relative_to(workdir).as_posix()
        if not path.is_file() or rel.startswith(("results/store/", "results/benchmarks/")):
            continue
        if rel in files or any(rel.startswith(d) for d in folders) or path.name == ".snakemake_timestamp":
            continue
        out.append(path)
    return out


def stale_command(args) -> int:
    """``rsaflow stale``: what ``snakemake --summary`` (with the user's arguments) does not produce."""
    import subprocess

    extra = [a for a in args.snakemake_args if a != "--"]
    workdir = "."
    for flag in ("-d", "--directory"):
        if flag in extra and extra.index(flag) + 1 < len(extra):
            workdir = extra[extra.index(flag) + 1]
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--summary", *extra], capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.startswith("output_file"):
        print(f"rsaflow: snakemake --summary failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}",
              file=sys.stderr)
        return 2
    stale = stale_files(workdir, proc.stdout)
    for path in stale:
        print(path)
        if args.remove:
            path.unlink()
    verb = "removed" if args.remove else "stale (rsaflow stale --remove deletes them)"
    print(f"# {len(stale)} files {verb}; then rsaflow store --prune frees products no result links to")
    return 0


def store_command(args) -> int:
    """``rsaflow store``: a summary per kind, or ``--prune`` (see :func:`rsaflow.store.prune`)."""
    from pathlib import Path

    from rsaflow import store

    root = Path(args.root) if args.root else store.STORE_DIR
    if not root.is_dir():
        print(f"rsaflow: no store at {root} (run from the workflow's working directory, or name the folder)",
              file=sys.stderr)
        return 1
    if args.prune:
        removed = store.prune(root, args.older_than, args.dry_run)
        verb = "would remove" if args.dry_run else "removed"
        for path in removed:
            print(path)
        print(f"# {verb} {len(removed)} objects, {sum(p.stat().st_size for p in removed if p.exists()) / 1e6:.1f} MB"
              if args.dry_run else f"# {verb} {len(removed)} objects")
        return 0
    print("kind\tobjects\tMB\tunreferenced")
    for kind, entry in sorted(store.summary(root).items()):
        print(f"{kind}\t{entry['objects']}\t{entry['bytes'] / 1e6:.1f}\t{entry['unreferenced']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
