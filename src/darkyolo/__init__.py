"""darkyolo: YOLOv2 and YOLOv3 on PyTorch, exact with Darknet's ``.cfg`` and ``.weights`` files."""

from darkyolo.errors import ConfigError, DarkyoloError, DataError, WeightsError
from darkyolo.models.darknet import Darknet, load_model

__all__ = ["ConfigError", "Darknet", "DarkyoloError", "DataError", "WeightsError", "load_model"]
__version__ = "0.1.0"
