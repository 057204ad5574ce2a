"""The form's fields become the chosen model's options, and nothing else."""

import json

import pytest

from videostyle_airflow.looks import model_options

FORM = {"style": "scream", "style_image": None, "checkpoint": "", "strength": 0.5, "crf": 16}


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
