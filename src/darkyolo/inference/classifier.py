"""A trained classifier as a predictor, the counterpart of :class:`~darkyolo.inference.predictor.Detector`.

>>> clf = Classifier("runs/classify/exp/weights/best.pt")          # doctest: +SKIP
>>> clf.top(read_image("shirt.jpg"), k=3)                          # doctest: +SKIP
[Ranked(index=4, name='shirt', p=0.91), ...]

A picture (RGB ``uint8 [H, W, 3]``) is centre-cropped at the classifier's input side (Darknet's
evaluation crop, :func:`~darkyolo.classify.data.center_crop`), scaled to 0..1, and the network's
``[softmax]`` output ranked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from darkyolo.classify.data import center_crop
from darkyolo.classify.evaluate import class_probabilities
from darkyolo.device import resolve_device
from darkyolo.errors import OptionError


@dataclass(frozen=True)
class Ranked:
    """One class of a picture's ranking: its index, name and probability."""

    index: int
    name: str
    p: float


class Classifier:
    """Load a classifier: ``weights`` a checkpoint (its own cfg and names) or Darknet
    ``.weights`` with ``model`` (a cfg) and ``names``; ``img_size`` the crop side (default: the
    cfg's width); ``device`` as ``--device``."""

    def __init__(
        self,
        weights: str | Path,
        model: str | None = None,
        names: list[str] | None = None,
        img_size: int | None = None,
        device: str = "cpu",
    ) -> None:
        from darkyolo.models.zoo import resolve_model

        source = resolve_model(model, weights, task="classify")
        self.notes = list(source.notes)
        network = source.build()
        names = names if names is not None else source.names
        if names is None or len(names) != network.num_classes:
            count = "no" if names is None else len(names)
            raise OptionError(
                f"{weights}: the network has {network.num_classes} outputs but {count} class "
                "names came with it: give --names FILE"
            )
        self.device = resolve_device(device)
        self.model = network.to(self.device)
        self.names = list(names)
        self.img_size = img_size or network.config.net.width

    def probabilities(self, image: np.ndarray) -> torch.Tensor:
        """RGB ``uint8 [H, W, 3]`` -> the class probabilities ``[N]`` of its centre crop."""
        crop = center_crop(image, self.img_size)
        x = torch.from_numpy(crop.transpose(2, 0, 1).copy())[None].to(self.device).float() / 255
        with torch.inference_mode():
            return class_probabilities(self.model, x)[0].cpu()

    def top(self, image: np.ndarray, k: int = 5) -> list[Ranked]:
        """The ``k`` most probable classes of ``image``, best first."""
        values, indices = self.probabilities(image).topk(min(k, len(self.names)))
        return [Ranked(int(i), self.names[int(i)], float(v)) for v, i in zip(values, indices)]
