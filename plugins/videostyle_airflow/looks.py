"""The look a process run asks for: the form's model and, of its other fields, the options that
model takes (`FrameModel.defaults`), as the JSON the CLI's `--options` reads."""

import json
from collections.abc import Mapping
from typing import Any

# The form's fields that are model options; each model takes some of them.
LOOK_PARAMS = ("style", "style_image", "checkpoint", "mode", "strength")


def model_options(params: Mapping[str, Any]) -> str:
    """JSON of the options of `params["model"]` its fields set; empty fields are left out."""
    # At render time, in the worker: parsing the DAG imports no model module.
    from videostyle.models.registry import get_model

    takes = get_model(params["model"]).defaults
    options = {
        name: params[name]
        for name in LOOK_PARAMS
        if name in takes and params.get(name) not in (None, "")
    }
    return json.dumps(options)
