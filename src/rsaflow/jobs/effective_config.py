"""Rule ``effective_config``: the validated config (schema defaults filled in) as YAML, for the report.

Not part of :mod:`rsaflow.config` (DAG-time code), so that editing config normalisation does not
rerun this job, and editing this job's formatting does not touch the DAG-time code.
"""

from __future__ import annotations

import json

from rsaflow import atomic


def write_effective_config(path, config_json: str) -> None:
    """Write the config given as JSON text as YAML (keys sorted, block style), atomically."""
    import yaml

    text = "# The configuration of this run, schema defaults filled in (written by rsaflow).\n"
    text += yaml.safe_dump(json.loads(config_json), sort_keys=True, default_flow_style=False)
    atomic.write_text(path, text)
