"""`rsaflow layers`: graph nodes with output shapes, for every architecture of the default config."""

import subprocess
import sys

import pytest
import yaml

from conftest import REPO

pytestmark = pytest.mark.slow


def layers(*args):
    return subprocess.run([sys.executable, "-m", "rsaflow.cli", "layers", *args], capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}, timeout=300)


@pytest.mark.parametrize("key", list(yaml.safe_load((REPO / "config.yaml").read_text())["models"]))
def test_default_config_nodes_are_listed_with_shapes(key):
    config = yaml.safe_load((REPO / "config.yaml").read_text())["models"][key]
    layer = next(iter(config["layers"].values()))
    node = layer if isinstance(layer, str) else layer["node"]
    proc = layers(config.get("arch", key))
    assert proc.returncode == 0, proc.stderr
    rows = dict(line.split() for line in proc.stdout.splitlines()[1:])
    expected = {"alexnet": "1x4096", "resnet50": "1x2048x1x1", "vgg11": "1x4096", "vit_b_16": "1x197x768"}[key]
    assert rows[node] == expected


def test_filter_and_unknown_arch():
    proc = layers("resnet18", "--filter", "layer4.1")
    assert proc.returncode == 0 and all("layer4.1" in line for line in proc.stdout.splitlines()[1:])
    proc = layers("resnet81")
    assert proc.returncode == 2 and "close matches: resnet18" in proc.stderr
