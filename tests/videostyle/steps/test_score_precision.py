"""The precision scoring picks by default: what the hardware runs natively, and only where every
styling model's output stays within the pipeline's PSNR bound of its fp32 output."""

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from scripts.footage import real_clip
from tests.media import psnr
from tests.style_images import save_photo
from videostyle.models.base import Prepared
from videostyle.models.magenta_arbitrary import style_vector
from videostyle.models.registry import load_model
from videostyle.models.transformer_net import TransformerNet
from videostyle.steps.score import pick_precision

CPU = torch.device("cpu")
PSNR_BOUND_DB = 30.0  # the pipeline's bound against fp32 (README, Performance)


def precisions_auto_picks(device: torch.device) -> set[str]:
    """Every precision `pick_precision("auto", device)` can return on some hardware of that
    kind; the hardware queries are replaced by each possible answer (a boundary: this machine
    has one CPU and no GPU)."""
    picked = set()
    with pytest.MonkeyPatch.context() as patch:
        for avx512_bf16 in (False, True):
            for amx in (False, True):
                for cuda_bf16 in (False, True):
                    patch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
                    patch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
                    patch.setattr(torch.cuda, "is_bf16_supported", lambda v=cuda_bf16: v)
                    picked.add(pick_precision("auto", device))
    return picked


def test_auto_is_bf16_only_where_the_hardware_has_native_bf16(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Hardware queries replaced (a boundary): each CPU and GPU kind this code may meet.
    for avx512_bf16, amx, expected in (
        (False, False, "fp32"),
        (True, False, "bf16"),
        (False, True, "bf16"),
    ):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert pick_precision("auto", CPU) == expected
    gpu = torch.device("cuda", 0)
    for bf16, expected in ((True, "bf16"), (False, "fp16")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda v=bf16: v)
        assert pick_precision("auto", gpu) == expected
    assert precisions_auto_picks(CPU) == {"fp32", "bf16"}
    assert precisions_auto_picks(gpu) == {"bf16", "fp16"}


@pytest.mark.parametrize("setting", ["fp32", "bf16", "fp16"])
def test_a_set_precision_is_kept(setting: str) -> None:
    assert pick_precision(setting, CPU) == setting


def test_auto_on_this_cpu_matches_its_flags() -> None:
    flags = Path("/proc/cpuinfo").read_text().split()
    native = "avx512_bf16" in flags or "amx_bf16" in flags
    assert pick_precision("auto", CPU) == ("bf16" if native else "fp32")


@pytest.fixture(scope="module")
def footage() -> torch.Tensor:
    """Four frames of Big Buck Bunny, a second apart, at 320x180."""
    raw = subprocess.run(
        [
            *("ffmpeg", "-nostdin", "-v", "error", "-i", str(real_clip("bigbuckbunny.mp4"))),
            *("-vf", r"select=not(mod(n\,25)),scale=320:180", "-fps_mode", "passthrough"),
            *("-frames:v", "4", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"),
        ],
        capture_output=True,
        check=True,
    ).stdout
    return torch.from_numpy(np.frombuffer(raw, np.uint8).reshape(4, 180, 320, 3).copy())


def style_models(tmp_path: Path) -> list[tuple[str, dict[str, object], Prepared]]:
    """Each styling model with options and what its `prepare` would have made."""
    torch.manual_seed(5)
    net = TransformerNet()
    state = net.state_dict()
    state["deconv3.conv2d.weight"] = state["deconv3.conv2d.weight"] * 200  # a dense texture
    state["deconv3.conv2d.bias"] = torch.full((3,), 128.0)
    checkpoint = tmp_path / "candy.pth"
    torch.save(state, checkpoint)
    coffee = np.asarray(Image.open(save_photo(tmp_path / "coffee.png", "coffee")))
    vector = style_vector(coffee, 1.0).reshape(-1).tolist()
    return [
        ("multistyle26", {"style": "starry-night"}, None),
        ("multistyle26", {"style": "scream:1,dot-mosaic:1", "strength": 0.7}, None),
        ("painting", {"style_image": "coffee.jpg"}, {"style_vector": vector}),
        ("checkpoint", {"checkpoint": str(checkpoint)}, checkpoint.read_bytes()),
    ]


@pytest.mark.parametrize("precision", sorted(precisions_auto_picks(CPU) - {"fp32"}))
def test_every_styling_model_stays_within_the_psnr_bound_in_what_auto_picks_on_cpu(
    precision: str, footage: torch.Tensor, tmp_path: Path
) -> None:
    for name, options, prepared in style_models(tmp_path):
        fp32 = load_model(name, options, device=CPU, prepared=prepared)(footage).numpy()
        low = load_model(name, options, device=CPU, precision=precision, prepared=prepared)
        styled = low(footage).numpy()
        assert np.abs(styled.astype(int) - footage.numpy()).mean() > 10, name  # styled at all
        assert psnr(styled, fp32) >= PSNR_BOUND_DB, (name, options, psnr(styled, fp32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("precision", sorted(precisions_auto_picks(torch.device("cuda", 0))))
def test_every_styling_model_stays_within_the_psnr_bound_in_what_auto_picks_on_cuda(
    precision: str, footage: torch.Tensor, tmp_path: Path
) -> None:
    gpu = torch.device("cuda", 0)
    for name, options, prepared in style_models(tmp_path):
        fp32 = load_model(name, options, device=gpu, prepared=prepared)(footage).numpy()
        styled = load_model(name, options, device=gpu, precision=precision, prepared=prepared)(
            footage
        ).numpy()
        assert psnr(styled, fp32) >= PSNR_BOUND_DB, (name, options, psnr(styled, fp32))
