"""The form's fields become the chosen model's options, and nothing else."""

import json
import subprocess
import sys

import pytest

from videostyle.models.registry import MODELS
from videostyle_airflow.looks import model_options

WORKER_ONLY = {"torch", "torchvision", "numpy", "PIL", "onnx", "onnx2torch", "ffmpeg", "mpi4py"}

FORM = {
    "style": "scream",
    "style_image": None,
    "checkpoint": "",
    "mode": "blur",
    "strength": 0.5,
    "crf": 16,
}


@pytest.mark.parametrize(
    ("model", "form", "options"),
    [
        ("multistyle26", FORM, {"style": "scream", "strength": 0.5}),
        (
            "painting",
            FORM | {"style_image": "works/starry.jpg"},
            {"style_image": "works/starry.jpg", "strength": 0.5},
        ),
        # An empty field is no option: the model's own check names what is missing.
        ("painting", FORM, {"strength": 0.5}),
        (
            "checkpoint",
            FORM | {"checkpoint": "az://m/c.pth"},
            {"checkpoint": "az://m/c.pth", "strength": 0.5},
        ),
    ],
)
def test_a_model_gets_the_fields_it_takes(
    model: str, form: dict[str, object], options: dict[str, object]
) -> None:
    assert json.loads(model_options(form | {"model": model})) == options


def test_rendering_a_models_options_needs_none_of_the_workers_heavy_packages() -> None:
    # The Kubernetes launcher's Airflow image has no torch, numpy, Pillow, onnx or ffmpeg: the
    # form's look must render there for every model, importing each model's module by name.
    script = (
        "import sys\n"
        "class Absent:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {sorted(WORKER_ONLY)!r}:\n"
        "            raise ImportError(f'{name} is not in the Airflow image')\n"
        "sys.meta_path.insert(0, Absent())\n"
        "from videostyle.models.registry import MODELS\n"
        "from videostyle_airflow.looks import model_options\n"
        "for model in MODELS:\n"
        "    print(model, model_options({'model': model, 'strength': 1.0}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == len(MODELS)
