import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from videostyle.errors import BadInputError, BadParameterError
from videostyle.models.base import FrameTransform
from videostyle.models.registry import load_model, output_name
from videostyle.models.style_runner import StyleRunner
from videostyle.models.styles import parse_style
from videostyle.models.transformer_net import TransformerNet
from videostyle.models.weights import load_multistyle26

CPU = torch.device("cpu")


def frames(n: int, height: int, width: int, seed: int = 3) -> torch.Tensor:
    """Smooth gradients plus noise: a frame-like image, not pure noise."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs / width, ys / height, (xs + ys) / (width + height)], axis=-1) * 200
    noisy = base[None] + rng.normal(0, 20, (n, height, width, 3))
    return torch.from_numpy(np.clip(noisy, 0, 255).astype(np.uint8))


def diff(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.int() - b.int()).abs()


@pytest.fixture(scope="module")
def starry() -> FrameTransform:
    model = load_model("multistyle26", {"style": "starry-night"}, device=CPU)
    assert isinstance(model, StyleRunner)
    return model


def starry_night_by_hand(batch: torch.Tensor, pad_bottom: int, pad_right: int) -> torch.Tensor:
    height, width = batch.shape[1:3]
    x = F.pad(batch.permute(0, 3, 1, 2).float() / 255, (0, pad_right, 0, pad_bottom), "reflect")
    weights = torch.tensor(parse_style("19").weights)
    with torch.inference_mode():
        styled: torch.Tensor = load_multistyle26().eval()(x, weights)[:, :, :height, :width]
    return (styled * 255).round().to(torch.uint8).permute(0, 2, 3, 1)


def test_builtin_output_is_the_network_output_in_pixels(starry: StyleRunner) -> None:
    batch = frames(1, 64, 96)
    out = starry(batch)
    assert out.shape == (1, 64, 96, 3)
    assert out.dtype == torch.uint8
    assert diff(out, starry_night_by_hand(batch, 0, 0)).max() <= 1


def test_odd_sizes_keep_their_shape_and_are_styled(starry: StyleRunner) -> None:
    batch = frames(2, 37, 53)
    out = starry(batch)
    assert out.shape == (2, 37, 53, 3)
    assert diff(out, starry_night_by_hand(batch, 3, 3)).max() <= 1
    assert out.dtype == torch.uint8
    assert out.device == CPU
    assert out.is_contiguous()
    assert diff(out, batch).float().mean() > 30


def test_frames_in_a_batch_are_styled_independently(starry: StyleRunner) -> None:
    batch = torch.cat([frames(1, 37, 53, seed=1), frames(1, 37, 53, seed=2).flip(1)])
    together = starry(batch)
    assert diff(together[:1], starry(batch[:1])).max() <= 1
    assert diff(together[1:], starry(batch[1:])).max() <= 1


def test_strength_blends_styled_with_input(starry: StyleRunner) -> None:
    batch = frames(1, 37, 53)
    styled = starry(batch)
    assert torch.equal(
        load_model("multistyle26", {"style": "19", "strength": 0}, device=CPU)(batch), batch
    )
    half = load_model("multistyle26", {"style": "19", "strength": 0.5}, device=CPU)(batch)
    assert diff(half.int() * 2, styled.int() + batch.int()).max() <= 2


def test_blend_key_and_bf16_on_cpu_stays_close_to_fp32() -> None:
    blend = {"style": "scream:1,starry-night:3"}
    fp32 = load_model("multistyle26", blend, device=CPU)
    bf16 = load_model("multistyle26", blend, device=CPU, precision="bf16")
    assert output_name("multistyle26", blend | {"strength": 1.0}) == "scream-25+starry-night-75"
    batch = frames(1, 40, 48)
    assert diff(bf16(batch), fp32(batch)).float().mean() < 3


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"strength": -0.1}, r"bad parameter strength=-0.1: outside \[0, 1\]"),
        ({"strength": 1.5}, r"bad parameter strength=1.5: outside \[0, 1\]"),
        ({"strength": math.nan}, r"bad parameter strength=nan: outside \[0, 1\]"),
        ({"strength": "1"}, r"bad parameter strength='1': not a number"),
        ({"style": ""}, "multistyle26 needs a style"),
        ({"style": 7}, "multistyle26 needs a style"),
        ({"style": "mona-lisa"}, "unknown style 'mona-lisa'"),
        ({"checkpoint": "candy.pth"}, "bad parameter checkpoint='candy.pth': model multistyle26 "),
    ],
)
def test_bad_options_are_bad_parameters(options: dict[str, object], problem: str) -> None:
    with pytest.raises(BadParameterError, match=problem):
        load_model("multistyle26", {"style": "7"} | options, device=CPU)


@pytest.mark.parametrize(
    ("precision", "problem"),
    [
        ("int8", "precision must be one of fp32, bf16, fp16"),
        ("fp16", "fp16 needs a CUDA device"),
    ],
)
def test_bad_precisions_are_refused(precision: str, problem: str) -> None:
    with pytest.raises(BadInputError, match=problem):
        load_model("multistyle26", {}, device=CPU, precision=precision)


def test_too_small_frames_are_refused(starry: StyleRunner) -> None:
    with pytest.raises(BadInputError, match="8px minimum"):
        starry(frames(1, 7, 40))


@pytest.fixture
def checkpoint(tmp_path: Path) -> tuple[Path, TransformerNet]:
    """A random TransformerNet scaled to span [0, 255], saved with pre-0.4 running stats."""
    torch.manual_seed(5)
    net = TransformerNet()
    state = {**net.state_dict(), "in4.running_mean": torch.zeros(64)}
    state["deconv3.conv2d.weight"] = state["deconv3.conv2d.weight"] * 200
    state["deconv3.conv2d.bias"] = torch.full((3,), 128.0)
    state["res2.in1.running_var"] = torch.ones(128)
    path = tmp_path / "candy.pth"
    torch.save(state, path)
    net.load_state_dict({k: v for k, v in state.items() if "running" not in k})
    return path, net.eval()


def test_checkpoint_style_runner_runs_the_saved_network(
    checkpoint: tuple[Path, TransformerNet],
) -> None:
    path, net = checkpoint
    options = {"checkpoint": str(path)}
    transform = load_model("checkpoint", options, device=CPU, prepared=path.read_bytes())
    assert output_name("checkpoint", options | {"strength": 1.0}) == "candy"
    batch = frames(2, 40, 52)
    with torch.inference_mode():
        expected = net(batch.permute(0, 3, 1, 2).float()).round().clamp(0, 255).to(torch.uint8)
    out = transform(batch)
    assert out.shape == (2, 40, 52, 3)
    assert out.dtype == torch.uint8
    assert expected.float().std() > 20
    assert diff(out, expected.permute(0, 2, 3, 1)).max() <= 1
    odd = transform(frames(2, 37, 53))
    assert odd.shape == (2, 37, 53, 3)
    assert odd.dtype == torch.uint8


def test_style_with_a_checkpoint_is_refused(checkpoint: tuple[Path, TransformerNet]) -> None:
    path, _ = checkpoint
    with pytest.raises(BadParameterError, match=r"style='scream': checkpoint .* has its own style"):
        load_model("checkpoint", {"checkpoint": str(path), "style": "scream"}, device=CPU)
