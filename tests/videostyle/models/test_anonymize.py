"""The anonymize model's options, output names, context and report, without loading CenterFace
(its frames are tests/videostyle/test_anonymize_integration.py's)."""

from typing import Any

import pytest

from videostyle.errors import BadParameterError
from videostyle.models.anonymize import MODEL
from videostyle.models.face_blur import CARRY_FRAMES
from videostyle.models.registry import get_model, job_options, output_name


def test_registered_with_its_defaults() -> None:
    assert get_model("anonymize") is MODEL
    assert job_options("anonymize", {}) == {"mode": "blur", "margin": 0.3}
    assert MODEL.context_frames(job_options("anonymize", {})) == CARRY_FRAMES


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({}, "anonymized"),
        ({"mode": "fill"}, "anonymized-fill"),
        ({"margin": 0.5}, "anonymized-m50"),
        ({"mode": "fill", "margin": 0}, "anonymized-fill-m0"),
    ],
)
def test_output_names(options: dict[str, Any], name: str) -> None:
    assert output_name("anonymize", job_options("anonymize", options)) == name


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "pixelate"}, r"mode='pixelate': one of blur, fill"),
        ({"mode": 1}, r"mode=1"),
        ({"margin": -0.1}, r"margin=-0.1: outside \[0, 2\]"),
        ({"margin": 3}, r"margin=3: outside"),
        ({"margin": float("nan")}, r"margin=nan"),
        ({"margin": "wide"}, r"margin='wide': not a number"),
        ({"margin": True}, r"margin=True: not a number"),
        ({"sigma": 0.5}, r"sigma=0.5: model anonymize has no such option"),
    ],
)
def test_bad_options_are_bad_parameters(options: dict[str, Any], message: str) -> None:
    with pytest.raises(BadParameterError, match=message):
        job_options("anonymize", options)


def test_the_report_counts_faces_over_every_unit() -> None:
    units = [{"faces_per_frame": [1, 2, 0]}, {"faces_per_frame": [1, 1]}]
    assert MODEL.report_units({}, units) == {
        "faces_per_frame": {
            "frames": 5,
            "min": 0,
            "median": 1.0,
            "max": 2,
            "frames_without_faces": 1,
        }
    }
