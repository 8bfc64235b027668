"""darkyolo: YOLOv2 and YOLOv3 on PyTorch, exact with Darknet's ``.cfg`` and ``.weights`` files.

>>> from darkyolo import Detector
>>> Detector().predict(["dog.jpg"])         # the bundled COCO model  # doctest: +SKIP
>>> Detector("bccd").predict(["cells.jpg"])  # a bundled trained model  # doctest: +SKIP

The names that need PyTorch (``Detector``, ``Darknet``, ``load_model``...) load it on first use,
so the torch-free parts (``darkyolo.darknet``: cfg and ``.weights`` formats) import without it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from darkyolo.errors import ConfigError, DarkyoloError, DataError, OptionError, WeightsError

#: public name -> the module that defines it (imported when first asked for)
_LAZY = {
    "Detector": "darkyolo.inference.predictor",
    "Prediction": "darkyolo.inference.predictor",
    "Darknet": "darkyolo.models.darknet",
    "load_model": "darkyolo.models.io",
}

__all__ = [
    "ConfigError",
    "Darknet",
    "DarkyoloError",
    "DataError",
    "Detector",
    "OptionError",
    "Prediction",
    "WeightsError",
    "load_model",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'darkyolo' has no attribute {name!r}")
