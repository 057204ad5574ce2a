import re

import pytest

from videostyle.errors import BadParameterError
from videostyle.models.styles import STYLE_NAMES, StyleSpec, parse_style


def one_hot(index: int) -> tuple[float, ...]:
    return tuple(1.0 if i == index else 0.0 for i in range(26))


def test_names_are_26_unique_kebab_case() -> None:
    assert len(STYLE_NAMES) == 26
    assert len(set(STYLE_NAMES)) == 26
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", name) for name in STYLE_NAMES)
    assert STYLE_NAMES[7] == "scream"
    assert STYLE_NAMES[11] == "ink-hatching"
    assert STYLE_NAMES[13] == "wheat-field"
    assert STYLE_NAMES[19] == "starry-night"


@pytest.mark.parametrize("spec", ["19", " 19 ", "starry-night", "Starry-Night", "STARRY-NIGHT"])
def test_single_style_by_index_or_name(spec: str) -> None:
    parsed = parse_style(spec)
    assert parsed == StyleSpec(one_hot(19))
    assert parsed.key == "starry-night"


def test_blend_is_normalised_and_keyed_by_index_order() -> None:
    parsed = parse_style("starry-night:3, Scream:1")
    assert parsed.weights[7] == pytest.approx(0.25)
    assert parsed.weights[19] == pytest.approx(0.75)
    assert sum(parsed.weights) == pytest.approx(1.0)
    assert sum(1 for w in parsed.weights if w) == 2
    assert parsed.key == "scream-25+starry-night-75"
    assert parse_style("7:0.25,19:0.75") == parsed
    assert parse_style("19:6,7:2").key == parsed.key


def test_blend_key_is_filename_safe_and_keeps_fractions() -> None:
    key = parse_style("0:1,1:1,2:1").key
    assert key == "pastel-33.33+woodcut-33.33+charcoal-33.33"
    assert re.fullmatch(r"[a-z0-9.+-]+", key)
    assert parse_style("3:1,19:7").key == "abstract-12.5+starry-night-87.5"


def test_blend_terms_without_weight_count_as_one_and_zero_weights_drop_out() -> None:
    assert parse_style("7,19").key == "scream-50+starry-night-50"
    assert parse_style("7:1,19:0").key == "scream"
    assert parse_style("7:1,7:1") == StyleSpec(one_hot(7))


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("mona-lisa", "unknown style 'mona-lisa'"),
        ("26", "unknown style '26'"),
        ("-1", "unknown style '-1'"),
        ("scream:1,mona-lisa:2", "unknown style 'mona-lisa'"),
        ("", "unknown style ''"),
        ("7,,19", "unknown style ''"),
        ("%$#", "unknown style '%$#'"),
        ("scream:-1,19:2", "weight '-1' is not a number >= 0"),
        ("scream:nan", "weight 'nan' is not a number >= 0"),
        ("7:heavy", "weight 'heavy' is not a number >= 0"),
        ("7:1e3", "weight '1e3' is not a number >= 0"),
    ],
)
def test_bad_specs_are_named_as_a_bad_parameter_listing_what_is_valid(
    spec: str, problem: str
) -> None:
    with pytest.raises(BadParameterError) as caught:
        parse_style(spec)
    message = str(caught.value)
    assert message.startswith(f"bad parameter style={spec!r}: {problem}; known: pastel, ")
    assert "starry-night" in message
    assert "an index 0..25" in message
    assert "a blend like 3:0.5,19:0.5" in message


@pytest.mark.parametrize(
    ("spec", "problem"),
    [("7:0,19:0", "its weights are all zero"), ("7:" + "9" * 400, "is too large")],
)
def test_weights_that_make_no_blend_are_refused(spec: str, problem: str) -> None:
    with pytest.raises(BadParameterError, match=problem):
        parse_style(spec)


VALID = [
    "starry-night",
    "Starry-Night",
    "STARRY-NIGHT",
    " 19 ",
    "0",
    "25",
    "007",
    "scream:1,starry-night:3",
    "starry-night:3, Scream:1",
    "7:0.25,19:0.75",
    "7 : 2 , 19:.5",
    "3:0.5,19:0.5",
    "7:1.,19:0",
    "7,19",
    "7:1,7:1",
    "brown-mosaic:00.50,pastel",
    "7:" + "9" * 20,
]
INVALID = [
    "",
    " ",
    "mona-lisa",
    "starry night",
    "starry-nights",
    "starry-",
    "26",
    "100",
    "-1",
    "+7",
    "7.0",
    "0x7",
    "٩",  # Arabic-Indic digits: Python's int() and \d read them, a form's regex does not
    "1٩",
    "scream:-1",
    "scream:+1",
    "scream:nan",
    "scream:inf",
    "scream:1e3",
    "scream:1_000",
    "scream:",
    "scream:.",
    "scream:1:2",
    ":1",
    ",scream",
    "scream,",
    "scream,,19",
    "scream;19",
    "scream19",
    "scream\n",
    "\tscream",
    "scream\t",
    "in\u212a-hatching",  # the Kelvin sign, which str.lower() turns into "k"
    "starry-night\u00a0",  # a no-break space
]


@pytest.mark.parametrize("spec", VALID)
def test_a_well_formed_spec_parses(spec: str) -> None:
    assert sum(parse_style(spec).weights) == pytest.approx(1.0)


@pytest.mark.parametrize("spec", INVALID)
def test_a_malformed_spec_is_a_bad_parameter(spec: str) -> None:
    with pytest.raises(BadParameterError, match="bad parameter style="):
        parse_style(spec)
