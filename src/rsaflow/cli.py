"""Command line of rsaflow: list a model's layers, check a config, manage the store and stale results.

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
    rsaflow check my.yaml [-- SNAKEMAKE ARGS]  # YAML syntax (file:line:column), schema, paths: one line each
    rsaflow bind data/it.npy                  # confirm an order: stimuli file follows the current stimuli

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


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subcommand each for layers, store, stale, check and bind."""
    parser = argparse.ArgumentParser(prog="rsaflow", description=__doc__.split("\n\n")[0],
                                     epilog="Each command has its own --help, e.g. rsaflow layers --help.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{layers,store,stale,check,bind}")
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
    p_check = sub.add_parser("check", help="check a config file as the workflow would, one line per problem")
    p_check.add_argument("configfile", help="the config file (YAML or JSON)")
    p_check.add_argument("snakemake_args", nargs=argparse.REMAINDER,
                         help="after --: further snakemake arguments (-s, -d, ...)")
    p_bind = sub.add_parser("bind", help="confirm that id-less RDM files (order: stimuli) follow the current "
                                         "stimulus order (results/stimuli/order.tsv)")
    p_bind.add_argument("files", nargs="+", help="the RDM files (as named in the config)")
    p_bind.add_argument("--stimuli", default="results/stimuli/stimuli.h5",
                        help="the stimulus set they follow (default results/stimuli/stimuli.h5)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"store": store_command, "stale": stale_command, "check": check_command, "bind": bind_command}
    if args.command in commands:
        return commands[args.command](args)
    return layers_command(args)


def layers_command(args) -> int:
    """``rsaflow layers``: a model's nodes (or hooked modules) with output shapes, or ``--list``."""
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


def tracked_files(workdir) -> set[str]:
    """Paths (relative to ``workdir``, POSIX) under ``workdir``/results that git tracks; empty
    outside a git checkout or without git."""
    import subprocess

    try:
        proc = subprocess.run(["git", "-C", str(workdir), "ls-files", "-z", "--full-name", "--", "results"],
                              capture_output=True, text=True, check=False)
        top = subprocess.run(["git", "-C", str(workdir), "rev-parse", "--show-prefix"],
                             capture_output=True, text=True, check=False)
    except OSError:
        return set()
    if proc.returncode != 0 or top.returncode != 0:
        return set()
    prefix = top.stdout.strip()
    return {p[len(prefix):] for p in proc.stdout.split("\0") if p and p.startswith(prefix)}


def stale_files(workdir, summary: str) -> list:
    """Files under ``workdir``/results that no job of the current DAG writes (outputs, directory
    outputs, logs), leaving out the store, run-time benchmarks and every file git tracks
    (``results/.gitkeep``). Nothing outside ``results/`` is ever listed."""
    from pathlib import Path

    workdir = Path(workdir)
    files, folders = current_files(summary)
    keep = tracked_files(workdir)
    out = []
    for path in sorted((workdir / "results").rglob("*")):
        rel = path.relative_to(workdir).as_posix()
        if not path.is_file() or path.is_symlink() or rel.startswith(("results/store/", "results/benchmarks/")):
            continue
        if rel in files or rel in keep or any(rel.startswith(d) for d in folders) \
                or path.name == ".snakemake_timestamp":
            continue
        out.append(path)
    return out


#: Lines Snakemake prints before its own work, never the cause of a failure.
SNAKEMAKE_CHATTER = ("Using workflow specific profile", "Using profile", "Building DAG", "Assuming unrestricted",
                     "Config file ", "host:")


def failure_cause(stderr: str) -> str:
    """The line of a failed Snakemake run that says why: rsaflow's one-line config error, else the
    first line that is not Snakemake's chatter or a traceback's ``File ...`` line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in lines:
        if line.startswith("config error at ") or ": YAML syntax error:" in line:
            return line
    rest = [ln for ln in lines if not ln.startswith(SNAKEMAKE_CHATTER) and not ln.startswith('File "')]
    return rest[0] if rest else "no message"


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
        print(f"rsaflow: the workflow did not load ({failure_cause(proc.stderr)}); pass the arguments you run "
              "snakemake with after --, e.g. rsaflow stale -- --configfile my.yaml", file=sys.stderr)
        return 2
    stale = stale_files(workdir, proc.stdout)
    for path in stale:
        print(path)
        if args.remove:
            path.unlink()
    verb = "removed" if args.remove else "stale (rsaflow stale --remove deletes them)"
    print(f"# {len(stale)} files {verb}; then rsaflow store --prune frees products no result links to")
    return 0


def check_command(args) -> int:
    """``rsaflow check FILE``: the YAML syntax (file, line, column), then the workflow's own checks
    (schema, architectures and layers, paths, stimulus ids) through a dry run, one line each."""
    import subprocess

    from rsaflow.errors import RsaflowError
    from rsaflow.schema import load_config_file

    try:
        load_config_file(args.configfile)
    except RsaflowError as exc:
        print(f"rsaflow: {exc}", file=sys.stderr)
        return 2
    extra = [a for a in args.snakemake_args if a != "--"]
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--dry-run", "--quiet", "rules",
                           "--configfile", args.configfile, *extra], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"rsaflow: {failure_cause(proc.stderr)}", file=sys.stderr)
        return 2
    print(f"{args.configfile}: ok")
    return 0


def bind_command(args) -> int:
    """``rsaflow bind FILE ...``: bind each file's bytes to the stimulus set (rsaflow.binding)."""
    from pathlib import Path

    from rsaflow import binding, h5io
    from rsaflow.errors import RsaflowError
    from rsaflow.filedigest import file_sha256

    try:
        with h5io.open_artifact(args.stimuli, "stimuli") as f:
            digest, n = str(f.attrs["digest"]), f["images"].shape[0]
    except RsaflowError as exc:
        print(f"rsaflow: {exc} (run the workflow's stimuli step first, or pass --stimuli)", file=sys.stderr)
        return 2
    for name in args.files:
        if not Path(name).is_file():
            print(f"rsaflow: {name}: file not found", file=sys.stderr)
            return 2
        binding.bind(name, file_sha256(name), digest)
        print(f"bound {name} to the stimulus set {digest[:12]} ({n} stimuli, as in results/stimuli/order.tsv)")
    return 0


def store_command(args) -> int:
    """``rsaflow store``: a summary per kind, or ``--prune`` (see :func:`rsaflow.store.prune`); the
    activation shards (:func:`rsaflow.shards.prune`: those no activation folder's manifest names) as
    the kind ``shards``."""
    from pathlib import Path

    from rsaflow import shards, store

    root = Path(args.root) if args.root else store.STORE_DIR
    if not root.is_dir():
        print(f"rsaflow: no store at {root} (run from the workflow's working directory, or name the folder)",
              file=sys.stderr)
        return 1
    if args.prune:
        removed = store.prune(root, args.older_than, args.dry_run) + shards.prune(root, args.older_than, args.dry_run)
        verb = "would remove" if args.dry_run else "removed"
        for path in removed:
            print(path)
        print(f"# {verb} {len(removed)} objects, {sum(p.stat().st_size for p in removed if p.exists()) / 1e6:.1f} MB"
              if args.dry_run else f"# {verb} {len(removed)} objects")
        return 0
    print("kind\tobjects\tMB\tunreferenced")
    kinds = store.summary(root)
    kinds.update({shards.SHARDS: entry} if (entry := shards.summary(root)) else {})
    for kind, entry in sorted(kinds.items()):
        print(f"{kind}\t{entry['objects']}\t{entry['bytes'] / 1e6:.1f}\t{entry['unreferenced']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
