"""ffmpeg's share of scoring: decode and encode CPU per frame, and the units' x264 setting.

    python -m bench.encode [--work DIR]

Real footage styled by our model: Big Buck Bunny (scripts.footage, 1280x720 H.264, 132 frames)
scaled to 640x360 and styled once by the built-in model (eager fp32, style STYLE); the styled
frames are kept raw (rgb24) in the work folder and reused by a later run.

Measured, every figure CPU seconds (user + system, the ffmpeg child's own rusage from os.wait4,
see videostyle.media.ffmpeg.reap) per frame, so that other work on the machine does not skew it:

- decode: read_frames over a whole H.264 source, 640x360 and 1280x720, with 1 decoder thread
  and with ffmpeg's automatic count (0);
- GOP prefix: each unit of a 2-rank plan (units of at most 48 frames, as the pipeline cuts them)
  decoded as score does, from the keyframe before it, against one pass over the whole video, on
  the footage looped to 21 s and encoded with a keyframe every 10 s (x264's default keyint 250)
  and every 2 s;
- encode: FrameEncoder (one thread, as ranks run it on CPU) over the styled frames cut into
  the same units, for each x264 preset x CRF of the grid and a few further options: output
  size, and the quality of the decoded units (rgb24, as the pipeline reads them) against the
  styled frames as the output's 4:2:0 holds them (x264 lossless): PSNR (pooled squared error)
  and SSIM (ffmpeg's, in RGB, averaged over frames). Against the raw RGB frames (PSNR in RGB,
  reported too) chroma subsampling alone costs dense styled texture about 8 dB, the same for
  every setting: it hides the encoder's own loss, so the choice is made on the 4:2:0 figures.

The choice (selection rule): among the settings without a metric-tuning option (`-tune psnr`/
`ssim` switch psychovisual coding off to please the metric), whose PSNR is at least the
reference's minus PSNR_SLACK_DB (0.2 dB), whose SSIM is at least the reference's minus
SSIM_SLACK (0.001) and whose output is at most SIZE_CAP (1.25x) the reference's, the one of
least encode CPU per frame; the reference is the former default, preset "fast" at CRF 16. The
cheapest of any size is reported beside it.
"""

import argparse
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from scripts.footage import real_clip
from videostyle.defaults import BUILTIN_MODEL
from videostyle.media.ffmpeg import ffmpeg_cpu_delta, probe, run_ffmpeg
from videostyle.media.frames import FrameEncoder, read_frames
from videostyle.models.registry import load_model
from videostyle.steps.preprocess import plan_units

STYLE = "starry-night"
WIDTH, HEIGHT = 640, 360
# The choice must hold on each clip: Big Buck Bunny (animation), and real camera footage.
CLIPS = ("bigbuckbunny.mp4", "bikes.mp4")
SECOND_CLIP_FRAMES = 64
RANKS, MAX_UNIT_FRAMES = 2, 48  # the pipeline's default cut
REFERENCE = ("fast", 16, ())  # the former default
PSNR_SLACK_DB = 0.2
SSIM_SLACK = 0.001
SIZE_CAP = 1.25  # output bytes against the reference's: files users keep
# CRFs of each preset: around where each reaches the reference's quality.
GRID = {
    "ultrafast": (12, 13, 14, 15, 16),
    "superfast": (11, 12, 13),
    "veryfast": (12, 13, 14),
    "faster": (14, 15, 16),
    "fast": (14, 16),
}
# Further options, on the presets that may be chosen: (preset, crf, ffmpeg output options).
EXTRAS: tuple[tuple[str, int, tuple[tuple[str, str], ...]], ...] = (
    ("medium", 16, ()),
    ("veryfast", 13, (("tune", "film"),)),
    ("veryfast", 13, (("tune", "psnr"),)),
    ("veryfast", 13, (("x264-params", "rc-lookahead=20"),)),
)
METRIC_TUNES = ("psnr", "ssim")
GOPS = (250, 50)  # 10 s (x264's default keyint) and 2 s at 25 fps
GOP_LOOPS = 4  # 132 frames looped to 528: 21 s, two 10 s GOPs and more

Raw = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Setting:
    preset: str
    crf: int
    options: tuple[tuple[str, str], ...] = field(default=())

    @property
    def name(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.options)
        return f"{self.preset} crf{self.crf}" + (f" {extra}" if extra else "")

    @property
    def metric_tuned(self) -> bool:
        return dict(self.options).get("tune") in METRIC_TUNES


def _scaled_source(work: Path, *, gop: int | None, loops: int = 1) -> Path:
    """Big Buck Bunny scaled to 640x360, H.264 (crf 18, a keyframe every `gop` frames)."""
    out = work / f"bbb-{WIDTH}x{HEIGHT}-gop{gop}-x{loops}.mp4"
    if not out.exists():
        run_ffmpeg(
            [
                "ffmpeg", "-nostdin", "-v", "error", "-y",
                "-stream_loop", str(loops - 1), "-i", str(real_clip("bigbuckbunny.mp4")),
                "-an", "-vf", f"scale={WIDTH}:{HEIGHT}", "-c:v", "libx264", "-preset", "fast",
                "-crf", "18", "-pix_fmt", "yuv420p",
                *(["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0"] if gop else []),
                str(out),
            ],
            timeout=600,
        )  # fmt: skip
    return out


def _decode_all(path: Path) -> Raw:
    info = probe(path, timeout=600, decode=False)
    raw = run_ffmpeg(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0",
         "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        timeout=600,
    )  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(-1, info.height, info.width, 3)


def styled_frames(work: Path, clip: str = "bigbuckbunny.mp4") -> Raw:
    """The footage styled by the built-in model, raw rgb24, cached in `work`: Big Buck Bunny
    scaled to 640x360, or the first SECOND_CLIP_FRAMES frames of another clip at its own size."""
    name = Path(clip).stem
    cached = work / f"styled-{STYLE}-{name}.rgb"
    shape = work / f"styled-{STYLE}-{name}.shape"
    if not cached.exists():
        if clip == "bigbuckbunny.mp4":
            source = _decode_all(_scaled_source(work, gop=None))
        else:
            source = _decode_all(real_clip(clip))[:SECOND_CLIP_FRAMES]
        transform = load_model(BUILTIN_MODEL, {"style": STYLE}, device=torch.device("cpu"))
        with torch.inference_mode():
            styled = np.concatenate(
                [transform(torch.from_numpy(f[None].copy())).numpy() for f in source]
            )
        shape.write_text(" ".join(map(str, styled.shape)))
        cached.with_suffix(".tmp").write_bytes(styled.tobytes())
        cached.with_suffix(".tmp").rename(cached)
    dims = tuple(int(n) for n in shape.read_text().split())
    return np.fromfile(cached, np.uint8).reshape(dims)


def _unit_ranges(frames: int) -> list[range]:
    from videostyle.split import units_for

    return units_for(frames, RANKS, MAX_UNIT_FRAMES)


def _ssim(unit: Path, raw: Raw, scratch: Path) -> float:
    """ffmpeg's SSIM ("All") of `unit` decoded to rgb24 against `raw`, in planar RGB."""
    reference = scratch / "ssim-ref.rgb"
    reference.write_bytes(raw.tobytes())
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "info", "-i", str(unit),
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{raw.shape[2]}x{raw.shape[1]}",
         "-i", str(reference),
         "-lavfi", "[0:v]format=rgb24,format=gbrp[a];[1:v]format=gbrp[b];[a][b]ssim",
         "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"SSIM .*All:([0-9.]+)", done.stderr)
    if not found:
        raise RuntimeError(f"no SSIM from ffmpeg: {done.stderr[-500:]}")
    return float(found.group(1))


def as_420(styled: Raw, scratch: Path) -> Raw:
    """`styled` as the output's 4:2:0 holds it (x264 lossless, decoded to rgb24): what the
    encoder is given to keep, the chroma subsampling's loss already taken."""
    lossless = scratch / "lossless.mp4"
    with FrameEncoder(
        lossless,
        width=styled.shape[2],
        height=styled.shape[1],
        frame_rate=Fraction(25),
        crf=0,
        threads=1,
        timeout=600,
        preset="ultrafast",
    ) as encoder:
        encoder.write(styled)
    return _decode_all(lossless)


def _psnr(sse: float, values: int) -> float:
    return round(float(10 * np.log10(255.0**2 * values / sse)), 3)


def encode(
    setting: Setting, styled: Raw, in_420: Raw, scratch: Path, clip: str = ""
) -> dict[str, Any]:
    """Encode `styled` unit by unit at `setting`: CPU per frame, size, and PSNR/SSIM against
    the frames in 4:2:0 (`in_420`), PSNR against the raw RGB frames too."""
    sse, sse_rgb, size, ssim_sum = 0.0, 0.0, 0, 0.0
    with ffmpeg_cpu_delta() as cpu:
        wall = time.perf_counter()
        for index, frames in enumerate(_unit_ranges(len(styled))):
            unit = scratch / f"unit-{index}.mp4"
            with FrameEncoder(
                unit,
                width=styled.shape[2],
                height=styled.shape[1],
                frame_rate=Fraction(25),
                crf=setting.crf,
                threads=1,
                timeout=600,
                preset=setting.preset,
                x264=dict(setting.options),
            ) as encoder:
                for i in frames:
                    encoder.write(styled[i : i + 1])
        wall = time.perf_counter() - wall
    for index, frames in enumerate(_unit_ranges(len(styled))):
        unit = scratch / f"unit-{index}.mp4"
        size += unit.stat().st_size
        decoded = _decode_all(unit).astype(np.int32)
        ref = in_420[frames.start : frames.stop]
        assert decoded.shape == ref.shape, (decoded.shape, ref.shape)
        sse += float(np.sum((decoded - ref) ** 2))
        sse_rgb += float(np.sum((decoded - styled[frames.start : frames.stop]) ** 2))
        ssim_sum += _ssim(unit, ref, scratch) * len(frames)
    return {
        "clip": clip,
        "frames": len(styled),
        "setting": setting.name,
        "preset": setting.preset,
        "crf": setting.crf,
        "options": dict(setting.options),
        "encode_ms_per_frame": round(1000 * cpu.get("encode", 0.0) / len(styled), 2),
        "wall_ms_per_frame": round(1000 * wall / len(styled), 2),
        "bytes": size,
        "psnr_db": _psnr(sse, styled.size),
        "ssim": round(ssim_sum / len(styled), 5),
        "psnr_rgb_db": _psnr(sse_rgb, styled.size),
    }


def decode_cpu(path: Path, threads: int) -> dict[str, Any]:
    """read_frames over the whole of `path` with `threads` decoder threads."""
    info = probe(path, timeout=600, decode=False)
    with ffmpeg_cpu_delta() as cpu:
        wall = time.perf_counter()
        for _ in read_frames(
            path,
            width=info.width,
            height=info.height,
            seek_s=0.0,
            start_s=info.start_s - 1.0,
            end_s=None,
            count=info.frame_count,
            batch=8,
            threads=threads,
            timeout=600,
        ):
            pass
        wall = time.perf_counter() - wall
    return {
        "source": f"{info.width}x{info.height}",
        "threads": threads,
        "ms_per_frame": round(1000 * cpu["decode"] / info.frame_count, 3),
        "wall_ms_per_frame": round(1000 * wall / info.frame_count, 3),
    }


def gop_prefix(path: Path, gop: int) -> dict[str, Any]:
    """Decode CPU of the units as score reads them (each from the keyframe before it) against
    one pass over the whole video."""
    info = probe(path, timeout=600, decode=False)
    whole = decode_cpu(path, 1)["ms_per_frame"]
    units = plan_units(info, ranks=RANKS, max_unit_frames=MAX_UNIT_FRAMES)
    with ffmpeg_cpu_delta() as cpu:
        for unit in units:
            for _ in read_frames(
                path,
                width=info.width,
                height=info.height,
                seek_s=unit.seek_s,
                start_s=unit.start_s,
                end_s=unit.end_s,
                count=unit.frame_count,
                batch=8,
                threads=1,
                timeout=600,
            ):
                pass
    per_unit = 1000 * cpu["decode"] / info.frame_count
    return {
        "gop_frames": gop,
        "frames": info.frame_count,
        "units": len(units),
        "whole_ms_per_frame": whole,
        "by_unit_ms_per_frame": round(per_unit, 3),
        "prefix_ms_per_frame": round(per_unit - whole, 3),
    }


def choose(encodes: list[dict[str, Any]]) -> dict[str, Any]:
    """The selection rule of the module's docstring, on every clip at once; the cheapest of any
    size beside it. A setting's CPU is per frame over all clips, its size its largest ratio."""
    ref_name = Setting(REFERENCE[0], REFERENCE[1]).name
    clips = sorted({e["clip"] for e in encodes})
    ref = {e["clip"]: e for e in encodes if e["setting"] == ref_name}
    summary = []
    for name in dict.fromkeys(e["setting"] for e in encodes):
        rows = {e["clip"]: e for e in encodes if e["setting"] == name}
        if set(rows) != set(clips):
            continue
        frames = sum(r["frames"] for r in rows.values())
        summary.append(
            {
                "setting": name,
                "metric_tuned": dict(rows[clips[0]]["options"]).get("tune") in METRIC_TUNES,
                "encode_ms_per_frame": round(
                    sum(r["encode_ms_per_frame"] * r["frames"] for r in rows.values()) / frames, 2
                ),
                "psnr_db_vs_reference": min(
                    round(r["psnr_db"] - ref[c]["psnr_db"], 3) for c, r in rows.items()
                ),
                "ssim_vs_reference": min(
                    round(r["ssim"] - ref[c]["ssim"], 5) for c, r in rows.items()
                ),
                "size_ratio": max(round(r["bytes"] / ref[c]["bytes"], 3) for c, r in rows.items()),
            }
        )
    fit = [
        s
        for s in summary
        if not s["metric_tuned"]
        and s["psnr_db_vs_reference"] >= -PSNR_SLACK_DB
        and s["ssim_vs_reference"] >= -SSIM_SLACK
    ]
    best = min((s for s in fit if s["size_ratio"] <= SIZE_CAP), key=_cpu)
    reference = next(s for s in summary if s["setting"] == ref_name)
    return {
        "clips": clips,
        "reference": reference,
        "chosen": best,
        "cpu_saved": round(1 - best["encode_ms_per_frame"] / reference["encode_ms_per_frame"], 3),
        "cheapest_any_size": min(fit, key=_cpu),
        "summary": sorted(summary, key=_cpu),
    }


def _cpu(summary: dict[str, Any]) -> float:
    return float(summary["encode_ms_per_frame"])


def run(work: Path) -> dict[str, Any]:
    """Every measurement of the module's docstring; sources and styled frames kept in `work`."""
    work.mkdir(parents=True, exist_ok=True)
    decode = [
        decode_cpu(source, threads)
        for source in (_scaled_source(work, gop=None), real_clip("bigbuckbunny.mp4"))
        for threads in (1, 0)
    ]
    gops = [gop_prefix(_scaled_source(work, gop=g, loops=GOP_LOOPS), g) for g in GOPS]
    settings = [Setting(p, c) for p, crfs in GRID.items() for c in crfs]
    settings += [Setting(p, c, o) for p, c, o in EXTRAS]
    encodes = []
    with tempfile.TemporaryDirectory(dir=work) as scratch:
        for clip in CLIPS:
            frames = styled_frames(work, clip)
            in_420 = as_420(frames, Path(scratch))
            encodes += [encode(s, frames, in_420, Path(scratch), clip) for s in settings]
    return {
        "size": f"{WIDTH}x{HEIGHT}",
        "decode": decode,
        "gop_prefix": gops,
        "encode": encodes,
        "choice": choose(encodes),
    }


def table(results: dict[str, Any]) -> str:
    lines = [
        "decode (read_frames, CPU ms/frame; threads 0 = ffmpeg's automatic count):",
        "| source | threads | CPU ms/frame | wall ms/frame |",
        "| --- | --- | --- | --- |",
        *(
            f"| {d['source']} | {d['threads']} | {d['ms_per_frame']} | {d['wall_ms_per_frame']} |"
            for d in results["decode"]
        ),
        "",
        "GOP prefix (units of a 2-rank plan, each decoded from the keyframe before it):",
        "| GOP | frames | units | whole video ms/frame | by unit ms/frame | prefix ms/frame |",
        "| --- | --- | --- | --- | --- | --- |",
        *(
            f"| {g['gop_frames']} | {g['frames']} | {g['units']} | {g['whole_ms_per_frame']} "
            f"| {g['by_unit_ms_per_frame']} | {g['prefix_ms_per_frame']} |"
            for g in results["gop_prefix"]
        ),
        "",
        "encode (styled frames in units, one thread; quality against them in 4:2:0):",
        "| clip | frames | setting | CPU ms/frame | bytes | PSNR dB | SSIM | PSNR dB (RGB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *(
            f"| {e['clip']} | {e['frames']} | {e['setting']} | {e['encode_ms_per_frame']} "
            f"| {e['bytes']} | {e['psnr_db']} | {e['ssim']} | {e['psnr_rgb_db']} |"
            for e in results["encode"]
        ),
        "",
        "per setting over the clips (CPU per frame over all; worst PSNR/SSIM difference from "
        f"{Setting(*REFERENCE[:2]).name}; largest size ratio):",
        "| setting | CPU ms/frame | PSNR dB diff | SSIM diff | size |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {s['setting']} | {s['encode_ms_per_frame']} | {s['psnr_db_vs_reference']:+.2f} "
            f"| {s['ssim_vs_reference']:+.4f} | {s['size_ratio']:.2f}x |"
            for s in results["choice"]["summary"]
        ),
    ]
    choice = results["choice"]
    ref, best, cheapest = choice["reference"], choice["chosen"], choice["cheapest_any_size"]
    lines += [
        "",
        f"choice: {best['setting']}: {best['encode_ms_per_frame']} ms/frame "
        f"({choice['cpu_saved']:.0%} less than {ref['setting']}'s {ref['encode_ms_per_frame']}), "
        f"PSNR {best['psnr_db_vs_reference']:+.2f} dB, SSIM {best['ssim_vs_reference']:+.4f}, "
        f"size {best['size_ratio']:.2f}x",
        f"cheapest of any size: {cheapest['setting']}: {cheapest['encode_ms_per_frame']} "
        f"ms/frame, size {cheapest['size_ratio']:.2f}x",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("build/bench-encode"))
    args = parser.parse_args()
    print(table(run(args.work)))


if __name__ == "__main__":
    main()
