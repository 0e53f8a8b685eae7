"""Command line: ``rsaflow layers ARCH`` lists a model's graph nodes with their output shapes.

Usage::

    rsaflow layers resnet50                  # every node: name, output shape for one 224x224 image
    rsaflow layers vit_b_16 --filter encoder  # nodes whose name contains 'encoder'
    rsaflow layers --list                     # the torchvision classification architectures

(``python -m rsaflow.cli`` works without installing the entry point.)
The model is built untrained (no download); shapes do not depend on weights.
"""

from __future__ import annotations

import argparse
import sys


def layer_table(arch: str, size: int = 224, contains: str | None = None) -> list[tuple[str, str]]:
    """(node name, output shape) for every graph node of ``arch``, in execution order."""
    import torch
    from torchvision.models import get_model
    from torchvision.models.feature_extraction import create_feature_extractor

    from rsaflow.extract import check_arch, graph_nodes

    check_arch(arch, "arch")
    model = get_model(arch, weights=None).eval()
    nodes = [n for n in graph_nodes(model) if contains is None or contains in n]
    extractor = create_feature_extractor(model, return_nodes={n: n for n in nodes})
    with torch.inference_mode():
        outputs = extractor(torch.zeros(1, 3, size, size))
    rows = []
    for name in nodes:
        out = outputs[name]
        shape = "x".join(str(d) for d in out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        rows.append((name, shape))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rsaflow", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_layers = sub.add_parser("layers", help="list a model's graph nodes (layer names) and output shapes")
    p_layers.add_argument("arch", nargs="?", help="torchvision architecture, e.g. resnet50")
    p_layers.add_argument("--size", type=int, default=224, help="input image size (default 224)")
    p_layers.add_argument("--filter", default=None, help="only nodes whose name contains this text")
    p_layers.add_argument("--list", action="store_true", help="list the available architectures")
    args = parser.parse_args(argv)

    from rsaflow.errors import RsaflowError

    try:
        if args.list or not args.arch:
            from rsaflow.extract import classification_models

            print("\n".join(classification_models()))
            return 0
        rows = layer_table(args.arch, args.size, args.filter)
    except RsaflowError as exc:
        print(f"rsaflow: {exc}", file=sys.stderr)
        return 2
    width = max(len(n) for n, _ in rows)
    print(f"# {args.arch}: {len(rows)} nodes; output shape for one {args.size}x{args.size} image (batch x ...)")
    for name, shape in rows:
        print(f"{name:<{width}}  {shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
