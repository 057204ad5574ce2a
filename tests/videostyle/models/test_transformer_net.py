import torch

from videostyle.models.transformer_net import TransformerNet

CONVS = [
    "conv1",
    "conv2",
    "conv3",
    *(f"res{i}.conv{j}" for i in range(1, 6) for j in (1, 2)),
    "deconv1",
    "deconv2",
    "deconv3",
]
NORMS = [f"in{i}" for i in range(1, 6)] + [f"res{i}.in{j}" for i in range(1, 6) for j in (1, 2)]


def test_parameter_count_and_names_match_pytorch_examples() -> None:
    net = TransformerNet()
    assert sum(p.numel() for p in net.parameters()) == 1_679_235
    expected = {f"{conv}.conv2d.{p}" for conv in CONVS for p in ("weight", "bias")}
    expected |= {f"{norm}.{p}" for norm in NORMS for p in ("weight", "bias")}
    assert set(net.state_dict()) == expected
    assert net.state_dict()["conv1.conv2d.weight"].shape == (32, 3, 9, 9)
    assert net.state_dict()["deconv1.conv2d.weight"].shape == (64, 128, 3, 3)
    assert net.state_dict()["deconv3.conv2d.weight"].shape == (3, 32, 9, 9)


def test_output_has_the_input_shape_for_multiples_of_four() -> None:
    torch.manual_seed(0)
    with torch.inference_mode():
        out = TransformerNet().eval()(torch.rand(2, 3, 40, 52) * 255)
    assert out.shape == (2, 3, 40, 52)
    assert out.isfinite().all()
