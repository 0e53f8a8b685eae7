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


def listed(proc):
    assert proc.returncode == 0, proc.stderr
    return [line.split()[0] for line in proc.stdout.splitlines()[1:]]


@pytest.mark.parametrize("pattern", ["layer?.?.relu_1", "layer[12].*", "*.conv2", "fc"])
def test_filter_glob_selects_what_the_config_selects(pattern):
    import torchvision

    from rsaflow.config import layers_spec
    from rsaflow.layers import fx_nodes

    nodes = fx_nodes(torchvision.models.resnet18().eval())
    assert listed(layers("resnet18", "--filter", pattern)) == list(layers_spec(pattern, nodes, "layers", "resnet18"))


def test_filter_substring_and_empty_match():
    assert listed(layers("squeezenet1_1", "--filter", "classifier")) == [
        "classifier.0", "classifier.1", "classifier.2", "classifier.3"]
    for pattern in ("nomatch", "layer?.?.relu_2"):  # the second is ResNet-50's, not ResNet-18's
        proc = layers("resnet18", "--filter", pattern)
        assert proc.returncode == 1 and proc.stdout == ""
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert "no node of resnet18 matches the" in proc.stderr and repr(pattern) in proc.stderr
