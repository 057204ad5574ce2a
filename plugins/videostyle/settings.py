"""The one typed settings object: every knob of the library, read from VIDEOSTYLE_* variables."""

import tempfile
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIDEOSTYLE_", frozen=True)

    # Azure Blob Storage credentials: an account-key or SAS connection string (Azurite's works too).
    connection_string: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "VIDEOSTYLE_CONNECTION_STRING", "AZURE_STORAGE_CONNECTION_STRING"
        ),
    )
    # A store's own credential, preferred to connection_string for that store: the Airflow
    # launchers hand each step SAS connection strings scoped to what the step needs.
    inputs_connection_string: SecretStr | None = None
    work_connection_string: SecretStr | None = None
    outputs_connection_string: SecretStr | None = None
    styles_connection_string: SecretStr | None = None
    # Where each kind of blob lives: fsspec URLs, az://container[/prefix] or a local folder.
    inputs_url: str = "az://videos-in"
    work_url: str = "az://videos-work"
    outputs_url: str = "az://videos-out"
    # Style images (the painting model's `style_image` names a blob here); preprocess reads it.
    styles_url: str = "az://videos-styles"
    scratch_dir: Path = Path(tempfile.gettempdir()) / "videostyle"

    max_unit_frames: int = Field(default=48, ge=1)
    # Frames per forward pass; unset: 1 on CPU (one 640x360 frame's activations already
    # overflow the caches: larger batches are slower there), 8 on CUDA.
    batch_size: int | None = Field(default=None, ge=1)
    # torch.compile the model: "auto" when a rank's frames make up for the compile time.
    compile: Literal["auto", "on", "off"] = "auto"
    # Where torch.compile's kernels are kept on this machine, a folder per compiled model
    # (videostyle.compile_cache); it outlives jobs, so a machine compiles each model once.
    compile_cache_dir: Path = Path(tempfile.gettempdir()) / "videostyle-compile-cache"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Autocast dtype; "auto": the fastest the hardware runs natively whose output stays within
    # the pipeline's PSNR bound of fp32 (videostyle.steps.score.pick_precision).
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    ffmpeg_timeout_s: float = Field(default=3600.0, gt=0)
    # Inputs past these limits are refused before any work is spent on them.
    max_input_bytes: int = Field(default=20 * 2**30, gt=0)
    max_duration_s: float = Field(default=4 * 3600.0, gt=0)
    max_pixels: int = Field(default=3840 * 2160, gt=0)
