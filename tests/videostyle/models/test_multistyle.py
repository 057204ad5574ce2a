import numpy as np
import onnxruntime as ort
import pytest
import torch

from videostyle.models.multistyle import MultiStyleNet
from videostyle.models.styles import parse_style
from videostyle.models.weights import load_multistyle26, packaged_multistyle26


@pytest.fixture(scope="module")
def net() -> MultiStyleNet:
    return load_multistyle26().eval()


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    return ort.InferenceSession(str(packaged_multistyle26()), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(7).random((1, 3, 64, 96), dtype=np.float32)


def style_weights(spec: str) -> np.ndarray:
    return np.array(parse_style(spec).weights, dtype=np.float32)


def test_parameter_names_are_the_onnx_initializer_names(net: MultiStyleNet) -> None:
    names = dict(net.named_parameters())
    assert len(names) == 3 * (3 + 12 + 3)
    assert names["contract.0.w"].shape == (32, 3, 9, 9)
    assert names["contract.0.norm.gamma"].shape == (26, 32)
    assert names["res.3.1.norm.beta"].shape == (26, 32)
    assert names["expand.0.w"].shape == (8, 32, 3, 3)
    assert names["expand.2.w"].shape == (3, 4, 9, 9)
    assert sum(p.numel() for p in net.parameters()) == 166_104


@pytest.mark.parametrize("spec", ["19", "scream:1,starry-night:3"])
def test_matches_onnxruntime(
    net: MultiStyleNet, session: ort.InferenceSession, image: np.ndarray, spec: str
) -> None:
    weights = style_weights(spec)
    (expected,) = session.run(None, {"image": image, "style_weights": weights})
    with torch.inference_mode():
        actual = net(torch.from_numpy(image), torch.from_numpy(weights)).numpy()
    assert actual.shape == (1, 3, 64, 96)
    assert np.abs(actual - expected).max() < 1e-3
    assert actual.min() >= 0
    assert actual.max() <= 1
    assert actual.std() > 0.05


def test_per_image_style_weights_match_one_image_at_a_time(
    net: MultiStyleNet, image: np.ndarray
) -> None:
    batch = torch.from_numpy(np.concatenate([image, image[:, :, ::-1].copy()]))
    weights = torch.from_numpy(np.stack([style_weights("7"), style_weights("13:1,19:1")]))
    with torch.inference_mode():
        together = net(batch, weights)
        first = net(batch[:1], weights[0])
        second = net(batch[1:], weights[1])
    torch.testing.assert_close(together, torch.cat([first, second]), atol=1e-5, rtol=0)
    assert (first - second).abs().mean() > 0.05
