"""Defaults of a job, shared by the CLI and the Airflow Params; importing this is cheap."""

BUILTIN_MODEL = "multistyle26"
DEFAULT_STYLE = "starry-night"
# x264's CRF at the units' preset (veryfast: media.frames.X264_PRESET), lower is better and
# larger. Styled frames are dense texture: 13 at veryfast keeps the quality of the former
# default, 16 at fast (+0.46 dB PSNR against the styled frames in 4:2:0), for half the
# encoding CPU and up to 1.2x the size (bench/encode.py).
DEFAULT_CRF = 13
DEFAULT_RANKS = 2
