"""Names for the 26 built-in styles and the parser for style specs ("19", "scream:1,19:3")."""

import math
from dataclasses import dataclass

from videostyle.errors import BadInputError

# Upstream numbers the styles only; these names describe what each one paints, by index.
STYLE_NAMES: tuple[str, ...] = (
    "pastel",
    "woodcut",
    "charcoal",
    "abstract",
    "warm-wash",
    "orange-blue-strokes",
    "navy-stone",
    "scream",
    "pink-cyan-sketch",
    "dot-mosaic",
    "sepia-texture",
    "ink-hatching",
    "lavender",
    "wheat-field",
    "watercolor",
    "crayon",
    "impressionist",
    "weave",
    "sepia-pencil",
    "starry-night",
    "crimson-black",
    "ink-on-pink",
    "teal-poster",
    "green-poster",
    "blue-hatching",
    "brown-mosaic",
)
NUM_STYLES = len(STYLE_NAMES)
_INDEX_BY_NAME = {name: index for index, name in enumerate(STYLE_NAMES)}

_HELP = (
    f"a style is an index 0-{NUM_STYLES - 1} or a name ({', '.join(STYLE_NAMES)}); "
    "blend with non-negative weights, e.g. 'scream:1,starry-night:3' or '7:0.5,19:0.5'"
)


@dataclass(frozen=True)
class StyleSpec:
    """Style weights for the 26-style network, normalised to sum 1."""

    weights: tuple[float, ...]

    @property
    def key(self) -> str:
        """Canonical, filename-safe name: the style's name, or 'name-pct+name-pct' by index."""
        used = [(index, w) for index, w in enumerate(self.weights) if w > 0]
        if len(used) == 1:
            return STYLE_NAMES[used[0][0]]
        return "+".join(f"{STYLE_NAMES[index]}-{_percent(w)}" for index, w in used)


def parse_style(spec: str) -> StyleSpec:
    """Parse an index, a name (any case) or a blend of them into normalised style weights."""
    weights = [0.0] * NUM_STYLES
    terms = spec.split(",")
    for term in terms:
        ref, colon, weight_text = term.partition(":")
        weight = _weight(weight_text, spec) if colon else 1.0
        weights[_index(ref, spec)] += weight
    total = sum(weights)
    if total <= 0:
        raise BadInputError(f"style weights in {spec!r} are all zero; {_HELP}")
    return StyleSpec(tuple(w / total for w in weights))


def _index(ref: str, spec: str) -> int:
    ref = ref.strip().lower()
    if ref.isascii() and ref.isdigit() and int(ref) < NUM_STYLES:
        return int(ref)
    if ref in _INDEX_BY_NAME:
        return _INDEX_BY_NAME[ref]
    raise BadInputError(f"unknown style {ref!r} in {spec!r}; {_HELP}")


def _weight(text: str, spec: str) -> float:
    try:
        weight = float(text)
    except ValueError:
        raise BadInputError(f"bad style weight {text!r} in {spec!r}; {_HELP}") from None
    if not math.isfinite(weight) or weight < 0:
        raise BadInputError(f"style weight {text!r} in {spec!r} is not a finite number >= 0")
    return weight


def _percent(weight: float) -> str:
    return f"{weight * 100:.2f}".rstrip("0").rstrip(".")
