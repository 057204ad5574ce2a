"""python -m videostyle preprocess|score|stitch|publish|run: the one entry point of every step.

The steps are those of the steps table (videostyle.steps.table); `run` runs them all on local
files.
"""

import argparse
import importlib
import json
import logging
from pathlib import Path
from typing import Any

from videostyle.defaults import BUILTIN_MODEL, DEFAULT_CRF, DEFAULT_RANKS, DEFAULT_STYLE
from videostyle.errors import (
    BAD_INPUT_EXIT_CODE,
    FAILURE_FORMAT,
    BadParameterError,
    VideostyleError,
    one_line,
)
from videostyle.models.registry import MODELS, get_model, model_argument
from videostyle.settings import Settings
from videostyle.steps.table import STEPS
from videostyle.storage import Stores

log = logging.getLogger("videostyle")


def _job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=BUILTIN_MODEL,
        help=f"the model: {', '.join(MODELS)} (default {BUILTIN_MODEL}); or a TransformerNet "
        ".pth path or URL, for the checkpoint model",
    )
    parser.add_argument(
        "--style",
        help=f"the style option: name, index or blend like 3:0.5,19:0.5 "
        f"({BUILTIN_MODEL}; default {DEFAULT_STYLE})",
    )
    parser.add_argument(
        "--strength", type=float, help="the strength option: 0 keeps the input, 1 full (default)"
    )
    parser.add_argument(
        "--style-image",
        help="the style_image option (painting): a blob name in the styles container; for run, "
        "a local JPEG, PNG or WebP file",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any option of the model, e.g. checkpoint=az://models/candy.pth (repeatable); a "
        "value is read as JSON where the option's default is a number or a boolean",
    )
    parser.add_argument(
        "--options",
        default="{}",
        metavar="JSON",
        help="the model's options as one JSON object, as the Airflow launchers pass them",
    )
    parser.add_argument(
        "--crf",
        type=int,
        default=DEFAULT_CRF,
        help="H.264 quality (x264 veryfast's CRF), lower is better and larger",
    )
    parser.add_argument("--ranks", type=int, default=DEFAULT_RANKS, help="MPI ranks for scoring")
    parser.add_argument(
        "--temporal",
        nargs="?",
        const=True,
        default=False,
        type=_boolean,
        metavar="BOOL",
        help="the temporal mode: each frame blended with the previous one carried along the "
        "motion, so the texture does not flicker (not for anonymize); `--temporal false` is off, "
        "the default",
    )


def _boolean(text: str) -> bool:
    """A command line's true or false (Airflow renders a boolean Param as True or False)."""
    value = {"true": True, "1": True, "yes": True, "on": True}.get(text.lower())
    if value is None and text.lower() not in ("false", "0", "no", "off"):
        raise argparse.ArgumentTypeError(f"not true or false: {text!r}")
    return bool(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videostyle", description=__doc__)
    steps = parser.add_subparsers(dest="step", required=True)
    for step in STEPS.values():
        sub = steps.add_parser(step.name, help=step.help)
        if step.job_options:
            sub.add_argument("video", help="blob name in the inputs container")
        sub.add_argument("--job", required=True)
        if step.job_options:
            _job_options(sub)
    run = steps.add_parser("run", help="all steps on a local file")
    run.add_argument("input", type=Path)
    run.add_argument("output", type=Path)
    _job_options(run)
    return parser


def model_and_options(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The job's model and the options its command line gives (the model fills in the rest)."""
    model, options = model_argument(args.model)
    # An empty --style is no style, as it always was (the checkpoint model takes none).
    flags = {
        "style": args.style or None,
        "strength": args.strength,
        "style_image": args.style_image or None,
    }
    options |= {key: value for key, value in flags.items() if value is not None}
    defaults = get_model(model).defaults
    try:
        given = json.loads(args.options)
    except ValueError:
        given = None
    if not isinstance(given, dict):
        raise BadParameterError(f"bad parameter --options {args.options!r}: not a JSON object")
    for key, value in given.items():
        if key in options:
            raise BadParameterError(f"bad parameter {key}: given twice")
        options[key] = value
    for item in args.option:
        key, equals, text = item.partition("=")
        if not equals or not key:
            raise BadParameterError(f"bad parameter --option {item!r}: not KEY=VALUE")
        if key in options:
            raise BadParameterError(f"bad parameter {key}: given twice")
        options[key] = _option_value(defaults.get(key), text)
    return model, options


def _option_value(default: object, text: str) -> object:
    """`text` as a number or a boolean where the option's default is one, else as it is."""
    if isinstance(default, bool | int | float):
        try:
            value: object = json.loads(text)
        except ValueError:
            return text  # the model's check names it
        return value
    return text


def _dispatch(args: argparse.Namespace, settings: Settings) -> None:
    if args.step == "run":
        from videostyle.pipeline import run_local

        model, options = model_and_options(args)
        report = run_local(
            args.input,
            args.output,
            model=model,
            options=options,
            crf=args.crf,
            ranks=args.ranks,
            temporal=args.temporal,
            settings=settings,
        )
        print(json.dumps(report))
        return
    result = run_step(args, settings)
    if STEPS[args.step].result_line:
        print(json.dumps(result))


def run_step(args: argparse.Namespace, settings: Settings) -> Any:
    """Run the step `args` (parsed by build_parser) names, in this process; its result."""
    step = STEPS[args.step]
    if step.job_options:
        args.model, args.options = model_and_options(args)
    return importlib.import_module(step.module).from_cli(Stores(settings), settings, args)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's usage error: the same command line fails every time
        return BAD_INPUT_EXIT_CODE if exc.code == 2 else int(exc.code or 0)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)  # else every HTTP request's headers
    try:
        _dispatch(args, Settings())
    except VideostyleError as exc:
        log.error(FAILURE_FORMAT, args.step, one_line(exc))
        return exc.exit_code
    return 0
