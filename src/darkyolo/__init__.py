"""darkyolo: YOLOv2 and YOLOv3 on PyTorch, exact with Darknet's ``.cfg`` and ``.weights`` files."""

from darkyolo.errors import ConfigError, DarkyoloError, DataError, WeightsError

__all__ = ["ConfigError", "DarkyoloError", "DataError", "WeightsError"]
__version__ = "0.1.0"
