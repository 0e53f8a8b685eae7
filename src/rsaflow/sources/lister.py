"""What a model source offers, listed in a subprocess for the DAG-time catalog (rsaflow.catalog).

``python -m rsaflow.sources.lister '<json>'`` with ``{"source": name, "archs": bool, "entries":
{entry id: model spec}}`` prints ``{"archs": [...] | null, "entries": {entry id: {"layers_by",
"nodes"} | {"error": key suffix, "message": text}}}``. Each model is built without parameter memory
where its library allows (``skeleton``); a python factory's code runs. Imports torch.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys

from rsaflow import sources
from rsaflow.errors import ConfigError
from rsaflow.layers import layer_names

#: The key the entries are built under; an error's key is reported relative to it.
KEY = "models.__entry__"


def list_source(request: dict) -> dict:
    """The archs (where the source has a list) and each entry's layer names, or its error."""
    record = sources.get(request["source"])
    impl = importlib.import_module(record.impl)
    out = {"archs": impl.archs() if request.get("archs") else None, "entries": {}}
    for ident, spec in request["entries"].items():
        try:
            model = impl.skeleton(spec, KEY)
            layers_by, nodes = layer_names(model, record.tracing, spec.get("layers_by", "auto"))
            out["entries"][ident] = {"layers_by": layers_by, "nodes": nodes}
        except ConfigError as exc:
            message = str(exc)[len(f"config error at {exc.key}: "):]
            out["entries"][ident] = {"error": exc.key[len(KEY):], "message": message}
        except ValueError as exc:  # layers_by: fx on a model that does not trace
            out["entries"][ident] = {"error": ".layers_by", "message": str(exc)}
    return out


if __name__ == "__main__":
    logging.disable(logging.WARNING)
    stdout, sys.stdout = sys.stdout, sys.stderr  # a library's prints must not mix into the answer
    stdout.write(json.dumps(list_source(json.loads(sys.argv[1]))) + "\n")
