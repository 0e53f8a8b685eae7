# The default analysis: config.yaml beside the main Snakefile (the repository's root). It is read
# here first, so that a YAML syntax error is one line naming the file, line and column (Snakemake's
# own message names neither). A --configfile is parsed by Snakemake before any workflow code runs:
# `rsaflow check FILE` gives the same one-line message for it (docs/configuration.md).
import sys
from pathlib import Path

DEFAULT_CONFIG = Path(str(workflow.current_basedir)).parents[1] / "config.yaml"
sys.path.insert(0, str(DEFAULT_CONFIG.parent / "src"))

from rsaflow.errors import RsaflowError  # noqa: E402
from rsaflow.schema import load_config_file  # noqa: E402

if not workflow.modifier.skip_configfile:
    try:
        load_config_file(DEFAULT_CONFIG)
    except RsaflowError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1)


configfile: str(DEFAULT_CONFIG)
