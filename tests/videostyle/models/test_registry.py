"""The model seam: every registered model resolves, a bad model or option is a bad parameter,
and the steps know nothing model-specific: a stand-in model registered here (this very module,
one line in MODELS) runs through the real preprocess, score, stitch and publish."""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from tests.media import decode_rgb, make_clip
from videostyle.cli import build_parser, model_and_options
from videostyle.errors import BadParameterError
from videostyle.models import registry
from videostyle.models.base import FrameModel, FrameTransform, JobContext, Options, Prepared
from videostyle.models.registry import (
    MODELS,
    get_model,
    job_options,
    load_model,
    model_argument,
    output_name,
)
from videostyle.models.transformer_net import TransformerNet
from videostyle.plan import Plan, load_plan
from videostyle.settings import Settings
from videostyle.steps.preprocess import preprocess, quarantine_name
from videostyle.steps.publish import publish
from videostyle.steps.score import score
from videostyle.steps.stitch import stitch
from videostyle.storage import Stores

CPU = torch.device("cpu")
FRAMES = 7


class OneRank:
    """An mpi4py communicator of one rank (MPI is not under test here)."""

    def Get_rank(self) -> int:  # noqa: N802
        return 0

    def Get_size(self) -> int:  # noqa: N802
        return 1

    def gather(self, sendobj: Any, root: int = 0) -> list[Any]:
        return [sendobj]


class InvertFrames:
    """Every pixel v becomes ceiling - v."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.calls = 0

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return (self.ceiling - frames.int()).clamp(0, 255).to(torch.uint8)

    def warm_up(self, batch: int, height: int, width: int) -> None:
        pass


class Invert(FrameModel):
    """A stand-in per-frame model. Its ceiling reaches the ranks only through `prepare`, so the
    output shows that what preprocess prepared is what every rank loaded."""

    defaults: ClassVar[Mapping[str, Any]] = {"ceiling": 255, "name": "inverted"}
    prepared_for: ClassVar[list[str]] = []

    def check_options(self, options: Options) -> None:
        ceiling = options["ceiling"]
        if not isinstance(ceiling, int) or not 0 <= ceiling <= 255:
            raise BadParameterError(f"bad parameter ceiling={ceiling!r}: not 0..255")

    def prepare(self, options: Options, job: JobContext) -> Prepared:
        self.prepared_for.append(job.job_id)
        assert job.source.is_file()
        return {"ceiling": options["ceiling"], "frames": job.info.frame_count}

    def load(
        self,
        options: Options,
        prepared: Prepared,
        *,
        device: torch.device,
        precision: str,
        compiled: bool,
    ) -> FrameTransform:
        assert isinstance(prepared, dict)
        return InvertFrames(prepared["ceiling"])

    def output_name(self, options: Options) -> str:
        return str(options["name"])

    def report(self, options: Options, prepared: Prepared) -> dict[str, Any]:
        assert isinstance(prepared, dict)
        return {"prepared for frames": prepared["frames"]}


MODEL = Invert()


@pytest.fixture
def invert(monkeypatch: pytest.MonkeyPatch) -> str:
    """The stand-in registered as adding a model is: one line in MODELS."""
    monkeypatch.setitem(MODELS, "invert", __name__)
    return "invert"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        inputs_url=str(tmp_path / "in"),
        work_url=str(tmp_path / "work"),
        outputs_url=str(tmp_path / "out"),
        scratch_dir=tmp_path / "scratch",
        max_unit_frames=3,
        compile="off",
        device="cpu",
    )


@pytest.fixture
def clip(tmp_path: Path, settings: Settings) -> Path:
    """A 7-frame clip with audio in the inputs store as clip.mp4 (3 units of 3, 2 and 2)."""
    clip = make_clip(tmp_path / "clip.mp4", frames=FRAMES)
    Stores(settings).inputs.upload(clip, "clip.mp4")
    return clip


def run_all(settings: Settings, job: str, model: str, options: Mapping[str, Any]) -> Plan:
    stores = Stores(settings)
    plan = preprocess(
        stores,
        settings,
        video="clip.mp4",
        job_id=job,
        model=model,
        options=options,
        crf=16,
        ranks=1,
    )
    score(stores, settings, job_id=job, comm=OneRank())
    stitch(stores, settings, job_id=job)
    return plan


@pytest.mark.parametrize("name", list(MODELS))
def test_every_registered_model_resolves_to_the_model_its_module_exposes(name: str) -> None:
    model = get_model(name)
    assert isinstance(model, FrameModel)
    assert all(isinstance(key, str) for key in model.defaults)
    json.dumps(dict(model.defaults))  # the defaults go into the plan as they are


def test_the_built_in_models_complete_check_and_name_their_options() -> None:
    options = job_options("multistyle26", {"style": "7:1,19:3", "strength": 0.5})
    assert options == {"style": "7:1,19:3", "strength": 0.5}
    assert output_name("multistyle26", options) == "scream-25+starry-night-75-s50"
    assert job_options("multistyle26", {}) == {"style": "starry-night", "strength": 1.0}
    options = job_options("checkpoint", {"checkpoint": "az://models/candy.pth", "style": None})
    assert options == {"checkpoint": "az://models/candy.pth", "strength": 1.0}
    assert output_name("checkpoint", options) == "candy"


def test_an_unknown_model_is_a_bad_parameter_naming_the_known_ones(
    settings: Settings, clip: Path
) -> None:
    with pytest.raises(BadParameterError, match="bad parameter model='mosaic': unknown model; "):
        get_model("mosaic")
    stores = Stores(settings)
    with pytest.raises(BadParameterError, match=r"known: multistyle26, checkpoint") as caught:
        preprocess(
            stores,
            settings,
            video="clip.mp4",
            job_id="j1",
            model="mosaic",
            options={},
            crf=16,
            ranks=1,
        )
    assert caught.value.exit_code == 3
    assert not stores.work.exists(quarantine_name("j1")), "the video is not to blame"
    assert not stores.work.list()


@pytest.mark.parametrize(
    ("model", "options", "problem"),
    [
        ("multistyle26", {"colour": "red"}, r"colour='red': model multistyle26 has no such option"),
        ("multistyle26", {"strength": 2}, r"strength=2: outside \[0, 1\]"),
        ("checkpoint", {}, "checkpoint=None: the checkpoint model needs a TransformerNet"),
        ("checkpoint", {"checkpoint": "a/...pth"}, r"names its output '\.\.', not one safe"),
        ("invert", {"ceiling": 256}, "ceiling=256: not 0..255"),
        ("invert", {"ceiling": 9, "name": "a/b"}, "names its output 'a/b', not one safe"),
    ],
)
def test_a_bad_option_is_a_bad_parameter(
    invert: str, model: str, options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(BadParameterError, match=problem):
        output_name(model, job_options(model, options))


def test_the_command_line_gives_model_and_options_old_flags_included() -> None:
    def parsed(*argv: str) -> tuple[str, dict[str, Any]]:
        return model_and_options(build_parser().parse_args(["run", "in.mp4", "out.mp4", *argv]))

    assert parsed() == ("multistyle26", {})
    assert parsed("--style", "", "--strength", "0.5") == ("multistyle26", {"strength": 0.5})
    assert parsed("--model", "models/candy.pth") == (
        "checkpoint",
        {"checkpoint": "models/candy.pth"},
    )
    assert parsed("--model", "checkpoint", "--option", "checkpoint=az://m/c.pth") == (
        "checkpoint",
        {"checkpoint": "az://m/c.pth"},
    )
    assert parsed("--option", "strength=0.25", "--option", "style=19") == (
        "multistyle26",
        {"strength": 0.25, "style": "19"},  # read as the default's type: 19 stays a name
    )
    assert model_argument("multistyle26") == ("multistyle26", {})
    with pytest.raises(BadParameterError, match="bad parameter strength: given twice"):
        parsed("--strength", "1", "--option", "strength=1")
    with pytest.raises(BadParameterError, match="not KEY=VALUE"):
        parsed("--option", "strength")
    with pytest.raises(BadParameterError, match="unknown model"):
        parsed("--model", "mosaic")
    # As the Airflow launchers pass a form's options: one JSON object, typed as it is.
    assert parsed(
        "--model", "painting", "--options", '{"style_image": "a.jpg", "strength": 0.5}'
    ) == (
        "painting",
        {"style_image": "a.jpg", "strength": 0.5},
    )
    with pytest.raises(BadParameterError, match="not a JSON object"):
        parsed("--options", "[1]")
    with pytest.raises(BadParameterError, match="bad parameter style: given twice"):
        parsed("--style", "scream", "--options", '{"style": "scream"}')


def test_a_stand_in_model_runs_through_every_step_with_nothing_model_specific(
    invert: str, settings: Settings, clip: Path, tmp_path: Path
) -> None:
    Invert.prepared_for.clear()
    plan = run_all(settings, "job-invert", invert, {"name": "negative"})
    stores = Stores(settings)

    # Preprocess completed the options, prepared once and stored that with the job.
    assert (plan.model, plan.options) == ("invert", {"ceiling": 255, "name": "negative"})
    assert Invert.prepared_for == ["job-invert"]
    assert plan.prepared is not None
    assert json.loads(stores.work.read_bytes(plan.prepared)) == {"ceiling": 255, "frames": 7}
    assert load_plan(stores.work, "job-invert") == plan

    # Every frame scored by the stand-in: the negative of the source.
    stitched = decode_rgb(stores.work.download(plan.stitched_name, tmp_path / "stitched.mp4"))
    source = decode_rgb(clip).astype(int)
    assert stitched.shape == source.shape == (FRAMES, 108, 192, 3)
    assert np.abs(stitched - (255 - source)).mean() < 3  # H.264 at CRF 16
    assert np.abs(stitched - source).mean() > 60
    timings = json.loads(stores.work.read_bytes(plan.timing_name("score")))
    assert timings["model"] == "invert"

    # Published under the model's own name for the look, the report naming model and options.
    result = publish(stores, settings, job_id="job-invert")
    assert result["output"] == "clip.mp4/negative.mp4"
    report = json.loads(stores.outputs.read_bytes(result["report"]))
    assert (report["model"], report["options"]) == ("invert", plan.options)
    assert (report["style"], report["strength"]) == (None, None)  # not options of this model
    assert report["model_details"] == {"prepared for frames": FRAMES}  # the model's own word


def test_the_ranks_load_what_preprocess_stored_with_the_job(
    invert: str, settings: Settings, clip: Path, tmp_path: Path
) -> None:
    """Scoring never prepares again: it loads the job's stored preparation (here replaced
    between the steps), whatever the options say."""
    stores = Stores(settings)
    plan = preprocess(
        stores,
        settings,
        video="clip.mp4",
        job_id="job-prepared",
        model=invert,
        options={"ceiling": 100},
        crf=16,
        ranks=1,
    )
    assert plan.prepared is not None
    stores.work.write_bytes(plan.prepared, json.dumps({"ceiling": 50}).encode())
    score(stores, settings, job_id="job-prepared", comm=OneRank())
    stitch(stores, settings, job_id="job-prepared")
    stitched = decode_rgb(stores.work.download(plan.stitched_name, tmp_path / "stitched.mp4"))
    expected = np.clip(50 - decode_rgb(clip).astype(int), 0, 255)
    assert np.abs(stitched - expected).mean() < 3


@pytest.fixture
def candy(tmp_path: Path) -> Path:
    torch.manual_seed(5)
    state = TransformerNet().state_dict()
    state["deconv3.conv2d.bias"] = torch.full((3,), 128.0)
    path = tmp_path / "checkpoints" / "candy.pth"
    path.parent.mkdir()
    torch.save(state, path)
    return path


def test_a_checkpoint_is_copied_into_the_job_and_scored_from_there(
    settings: Settings, clip: Path, candy: Path, tmp_path: Path
) -> None:
    weights = candy.read_bytes()
    stores = Stores(settings)
    plan = preprocess(
        stores,
        settings,
        video="clip.mp4",
        job_id="job-candy",
        model="checkpoint",
        options={"checkpoint": str(candy), "strength": 0.5},
        crf=16,
        ranks=1,
    )
    assert plan.prepared is not None
    assert stores.work.read_bytes(plan.prepared) == weights
    candy.unlink()  # every rank and retry reads the job's copy, not the original
    score(stores, settings, job_id="job-candy", comm=OneRank())
    stitch(stores, settings, job_id="job-candy")
    result = publish(stores, settings, job_id="job-candy")
    assert result["output"] == "clip.mp4/candy-s50.mp4"
    stitched = decode_rgb(stores.work.download(plan.stitched_name, tmp_path / "stitched.mp4"))
    loaded = load_model("checkpoint", plan.options, device=CPU, prepared=weights)
    direct = loaded(torch.from_numpy(decode_rgb(clip).copy())).numpy()
    assert np.abs(stitched.astype(int) - direct).mean() < 6


@pytest.mark.parametrize("problem", ["missing", "garbage"])
def test_a_bad_checkpoint_is_a_bad_parameter_and_the_video_is_not_quarantined(
    settings: Settings, clip: Path, tmp_path: Path, problem: str
) -> None:
    path = tmp_path / "bad.pth"
    if problem == "garbage":
        path.write_bytes(b"not a checkpoint")
    stores = Stores(settings)
    with pytest.raises(BadParameterError, match=r"bad parameter checkpoint='.*bad\.pth': "):
        preprocess(
            stores,
            settings,
            video="clip.mp4",
            job_id="j2",
            model="checkpoint",
            options={"checkpoint": str(path)},
            crf=16,
            ranks=1,
        )
    assert not stores.work.exists(quarantine_name("j2"))
    assert not stores.work.list("jobs")


def test_a_plan_from_before_the_seam_reads_as_the_built_in_model(settings: Settings) -> None:
    stores = Stores(settings)
    old = {
        "job_id": "old",
        "video": "clip.mp4",
        "source_version": "v1",
        "source_ext": ".mp4",
        "width": 192,
        "height": 108,
        "frame_count": 7,
        "frame_rate": "24000/1001",
        "start_s": 0.0,
        "duration_s": 0.3,
        "audio": False,
        "audio_copied": False,
        "model": "multistyle26",
        "style": "scream",
        "strength": 0.5,
        "crf": 16,
        "units": [],
    }
    stores.work.write_bytes("jobs/old/plan.json", json.dumps(old).encode())
    plan = load_plan(stores.work, "old")
    assert (plan.model, plan.options, plan.prepared) == (
        "multistyle26",
        {"style": "scream", "strength": 0.5},
        None,
    )
    assert registry.output_name(plan.model, plan.options) == "scream-s50"
