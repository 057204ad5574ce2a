"""Names for the 26 built-in styles and the parser for style specs ("19", "scream:1,19:3")."""

import math
import re
from dataclasses import dataclass

from videostyle.errors import BadParameterError

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

# The grammar of a style spec: terms split by commas, each a name (any case) or an index, with
# an optional weight after a colon, spaces around; [0-9] rather than \d (Python's matches any
# Unicode digit).
_INDEX = "0*(?:1?[0-9]|2[0-5])"
_WEIGHT = "(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)"
_INDEX_RE = re.compile(_INDEX)
_WEIGHT_RE = re.compile(_WEIGHT)

_KNOWN = (
    f"known: {', '.join(STYLE_NAMES)} (any case), or an index 0..{NUM_STYLES - 1}, "
    "or a blend like 3:0.5,19:0.5 or scream:1,starry-night:3"
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
    for term in spec.split(","):
        ref, colon, weight_text = term.partition(":")
        index = _index(ref, spec)
        weights[index] += _weight(weight_text, spec) if colon else 1.0
    total = sum(weights)
    if total <= 0:
        raise BadParameterError(f"bad parameter style={spec!r}: its weights are all zero")
    return StyleSpec(tuple(w / total for w in weights))


def _index(ref: str, spec: str) -> int:
    ref = ref.strip(" ")
    if _INDEX_RE.fullmatch(ref):
        return int(ref)
    # ASCII only: str.lower() maps e.g. the Kelvin sign to "k", which no form would accept.
    if ref.isascii() and ref.lower() in _INDEX_BY_NAME:
        return _INDEX_BY_NAME[ref.lower()]
    raise BadParameterError(f"bad parameter style={spec!r}: unknown style {ref!r}; {_KNOWN}")


def _weight(text: str, spec: str) -> float:
    text = text.strip(" ")
    if not _WEIGHT_RE.fullmatch(text):
        raise BadParameterError(
            f"bad parameter style={spec!r}: weight {text!r} is not a number >= 0; {_KNOWN}"
        )
    weight = float(text)
    if not math.isfinite(weight):
        raise BadParameterError(f"bad parameter style={spec!r}: weight {text!r} is too large")
    return weight


def _percent(weight: float) -> str:
    return f"{weight * 100:.2f}".rstrip("0").rstrip(".")
