"""torch.compile'd styling gives the eager output, whatever the batch (about 30 s of compiling
on 2 cores with a cold cache: the price of guarding what long videos run by default on CPU)."""

import numpy as np
import torch

from videostyle.models.registry import load_model
from videostyle.models.style_runner import StyleRunner

CPU = torch.device("cpu")


def test_compiled_output_equals_eager_for_full_and_shorter_batches() -> None:
    rng = np.random.default_rng(11)
    batch = torch.from_numpy(rng.integers(0, 256, (3, 37, 53, 3), dtype=np.uint8))
    options = {"style": "starry-night", "strength": 0.5}
    eager = load_model("multistyle26", options, device=CPU)
    compiled = load_model("multistyle26", options, device=CPU, compiled=True)
    assert isinstance(compiled, StyleRunner)
    assert compiled.compiled
    full = compiled(batch)
    shorter = compiled(batch[:1])  # padded to the compiled batch of 3, then cut back
    assert full.shape == (3, 37, 53, 3)
    assert shorter.shape == (1, 37, 53, 3)
    assert (full.int() - eager(batch).int()).abs().max() <= 1
    assert torch.equal(shorter, full[:1])
