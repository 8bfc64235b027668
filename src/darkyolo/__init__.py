"""darkyolo: YOLOv2 and YOLOv3 on PyTorch, exact with Darknet's ``.cfg`` and ``.weights`` files.

>>> from darkyolo import Detector
>>> Detector().predict(["dog.jpg"])         # the bundled COCO model  # doctest: +SKIP
>>> Detector("bccd").predict(["cells.jpg"])  # a bundled trained model  # doctest: +SKIP
"""

from darkyolo.engine.predictor import Detector, Prediction
from darkyolo.errors import ConfigError, DarkyoloError, DataError, WeightsError
from darkyolo.models.darknet import Darknet, load_model

__all__ = [
    "ConfigError",
    "Darknet",
    "DarkyoloError",
    "DataError",
    "Detector",
    "Prediction",
    "WeightsError",
    "load_model",
]
__version__ = "0.1.0"
