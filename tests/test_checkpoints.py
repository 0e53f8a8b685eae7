"""Checkpoints given as `weights: <path>`: fine-tuned heads, wrappers, and one-line errors for files that do not fit."""

import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from torchvision.models.feature_extraction import create_feature_extractor  # noqa: E402

from rsaflow.errors import InputFileError  # noqa: E402
from rsaflow.sources.torchvision_models import load_model  # noqa: E402
from rsaflow.jobs.common import job  # noqa: E402


def one_line_error(arch, path):
    with pytest.raises(InputFileError) as info:
        load_model(arch, str(path), 0, "models.m")
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message and "Traceback" not in message
    return message


def features(model, node, x):
    with torch.inference_mode():
        return create_feature_extractor(model.eval(), return_nodes={node: "out"})(x)["out"]


def test_resnet18_with_ten_classes_loads_and_gives_the_same_activations(tmp_path):
    torch.manual_seed(1)
    direct = torchvision.models.resnet18(num_classes=10).eval()
    torch.save(direct.state_dict(), tmp_path / "ft.pt")
    model, _, prov = load_model("resnet18", str(tmp_path / "ft.pt"), 0, "models.m")
    assert prov["num_classes"] == 10 and prov["weights"] == "checkpoint"
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(features(model, "avgpool", x), features(direct, "avgpool", x))
    assert torch.equal(features(model, "fc", x), features(direct, "fc", x))  # the head too: (2, 10)


def test_squeezenet_conv_head_and_wrappers(tmp_path):
    torch.manual_seed(2)
    direct = torchvision.models.squeezenet1_1(num_classes=10).eval()
    sd = direct.state_dict()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    wrapped = {
        "plain.pt": sd,
        "ddp.pt": {f"module.{k}": v for k, v in sd.items()},  # DataParallel's state_dict
        "training.pt": {"state_dict": sd, "epoch": 3, "best_acc": 0.9},
        "model.pt": {"model": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3},
    }
    for name, content in wrapped.items():
        torch.save(content, tmp_path / name)
        model, _, prov = load_model("squeezenet1_1", str(tmp_path / name), 0, "models.m")
        assert prov["num_classes"] == 10, name
        assert torch.equal(features(model, "classifier.1", x), features(direct, "classifier.1", x)), name
    assert prov["checkpoint_entry"] == "model" and prov["checkpoint_prefix"] == "module."


def test_default_head_records_1000_classes(tmp_path):
    torch.save(torchvision.models.squeezenet1_1().state_dict(), tmp_path / "sd.pt")
    assert load_model("squeezenet1_1", str(tmp_path / "sd.pt"), 0, "models.m")[2]["num_classes"] == 1000


def test_files_that_are_not_state_dicts(tmp_path):
    model = torchvision.models.squeezenet1_1(num_classes=10)
    torch.save(model, tmp_path / "whole.pt")
    message = one_line_error("squeezenet1_1", tmp_path / "whole.pt")
    assert "torch.save(model.state_dict(), path)" in message and "SqueezeNet" in message
    assert "add_safe_globals" not in message and "weights_only=False" not in message

    (tmp_path / "notes.txt").write_text("epoch 3: loss 0.1\n")
    assert "not a torch checkpoint" in one_line_error("squeezenet1_1", tmp_path / "notes.txt")
    (tmp_path / "random.bin").write_bytes(bytes([7]) + np.random.default_rng(0).bytes(999))
    assert "not a torch checkpoint" in one_line_error("squeezenet1_1", tmp_path / "random.bin")

    torch.save(model.state_dict(), tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    assert "truncated or damaged" in one_line_error("squeezenet1_1", tmp_path / "truncated.pt")

    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, tmp_path / "nostate.pt")
    assert "no state_dict" in one_line_error("squeezenet1_1", tmp_path / "nostate.pt")


def test_state_dict_of_another_architecture(tmp_path):
    torch.save(torchvision.models.squeezenet1_0().state_dict(), tmp_path / "sq10.pt")
    message = one_line_error("squeezenet1_1", tmp_path / "sq10.pt")  # same keys, other shapes
    assert "does not fit squeezenet1_1" in message and "another shape" in message and "models.m.arch" in message
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pt")
    message = one_line_error("squeezenet1_1", tmp_path / "r18.pt")
    assert "missing" in message and "conv1.weight" in message
    # a head of another size AND another change elsewhere is not taken for a fine-tuned head
    sd = torchvision.models.squeezenet1_1(num_classes=10).state_dict()
    sd["features.0.weight"] = sd["features.0.weight"][:32]
    torch.save(sd, tmp_path / "mixed.pt")
    assert "features.0.weight" in one_line_error("squeezenet1_1", tmp_path / "mixed.pt")


def test_job_reports_one_line_without_traceback(tmp_path, capsys):
    torch.save(torchvision.models.squeezenet1_1(), tmp_path / "whole.pt")
    smk = types.SimpleNamespace(log=[str(tmp_path / "job.log")], threads=1, rule="extract")
    with pytest.raises(SystemExit) as info, job(smk):
        load_model("squeezenet1_1", str(tmp_path / "whole.pt"), 0, "models.m")
    assert str(info.value).startswith("rsaflow error in rule extract: ") and "\n" not in str(info.value)
    assert "Traceback" not in (tmp_path / "job.log").read_text() + capsys.readouterr().err
