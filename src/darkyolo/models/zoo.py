"""Trained models that ship with darkyolo, and what ``--model`` and ``--weights`` together mean.

A *trained model* is a name that brings its own cfg, weights and class names
(``yolov3-tiny-coco``, the default; ``bccd``). A *cfg* (a bundled name such as ``yolov3``, or a
``.cfg`` path) is an architecture only: it needs ``--weights``, or ``random_weights=True`` for an
untrained network, which happens only when asked for.

:func:`resolve_model` decides, in one place, for ``detect``, ``val``, ``export`` and
:class:`~darkyolo.inference.predictor.Detector`:

==========================  ===================  ==================================================
``model``                   ``weights``          result
==========================  ===================  ==================================================
none                        none                 :data:`DEFAULT_MODEL`
trained name                none                 its cfg, weights and names
trained name or cfg         checkpoint (``.pt``) the checkpoint's own cfg and names when it holds the
                                                 same architecture (classes and anchors may
                                                 differ; a note says so), else an error
trained name or cfg         Darknet ``.weights`` that cfg with those weights (and the names in
                                                 ``<cfg stem>.names`` beside a cfg file)
none                        checkpoint           the checkpoint's own cfg and names
none                        Darknet ``.weights`` error: a ``.weights`` file holds no cfg
cfg                         none                 error naming the trained models, unless
                                                 ``random_weights``
==========================  ===================  ==================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from darkyolo.darknet.cfg import (
    ConnectedSpec,
    ConvSpec,
    NetworkConfig,
    RegionSpec,
    YoloSpec,
    bundled_names_file,
    load_cfg,
    parse_cfg,
    resolve_cfg_path,
)
from darkyolo.darknet.weights import is_checkpoint
from darkyolo.data.formats.yolo import read_names
from darkyolo.errors import DarkyoloError, WeightsError


@dataclass(frozen=True)
class TrainedModel:
    """A model shipped with trained weights.

    ``cfg`` is a bundled cfg name or a file under ``darkyolo/assets``; ``weights`` a file there;
    ``names`` a bundled names list (``coco``) or a file there.
    """

    name: str
    cfg: str
    weights: str
    names: str
    summary: str
    aliases: tuple[str, ...] = ()

    def files(self) -> tuple[Path, Path, Path]:
        """``(cfg, weights, names)`` paths inside the installed package."""
        assets = Path(str(resources.files("darkyolo") / "assets"))
        cfg = assets / self.cfg if self.cfg.endswith(".cfg") else resolve_cfg_path(self.cfg)
        names = assets / self.names if "/" in self.names else bundled_names_file(self.names)
        return cfg, assets / self.weights, names


TRAINED_MODELS: tuple[TrainedModel, ...] = (
    TrainedModel(
        "yolov3-tiny-coco",
        cfg="yolov3-tiny",
        weights="coco/yolov3-tiny.weights",
        names="coco",
        summary="Darknet's official YOLOv3-tiny: 80 COCO classes (people, animals, vehicles...)",
        aliases=("coco",),
    ),
    TrainedModel(
        "yolov3-tiny-bccd",
        cfg="bccd/yolov3-tiny-bccd.cfg",
        weights="bccd/yolov3-tiny-bccd.weights",
        names="bccd/bccd.names",
        summary="YOLOv3-tiny trained by darkyolo on BCCD blood cells (RBC, WBC, Platelets)",
        aliases=("bccd",),
    ),
)

#: what ``detect``, ``val``, ``export`` and ``Detector()`` use when no model is named
DEFAULT_MODEL = "yolov3-tiny-coco"
#: the trained models a detector's training starts from when its layers fit (general-purpose
#: weights: COCO's), in the order tried
TRAINING_STARTS = ("yolov3-tiny-coco",)


def trained_model(name: str) -> TrainedModel | None:
    """The trained model called ``name`` (or one of its aliases), else ``None``."""
    for model in TRAINED_MODELS:
        if name == model.name or name in model.aliases:
            return model
    return None


def trained_model_list() -> str:
    """``yolov3-tiny-coco (alias coco), yolov3-tiny-bccd (alias bccd)``, for messages."""
    return ", ".join(
        m.name + (f" (alias {', '.join(m.aliases)})" if m.aliases else "") for m in TRAINED_MODELS
    )


@dataclass(frozen=True)
class ModelSource:
    """What to build: the parsed cfg, the weights to load (``None``: random), the class names
    (``None``: chosen by count), a name for messages, and lines to tell the user."""

    config: NetworkConfig
    weights: Path | None
    names: list[str] | None
    name: str
    notes: tuple[str, ...] = ()
    #: the darkyolo checkpoint at ``weights``, already read to find its cfg (read only once)
    checkpoint: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def build(self):  # -> Darknet (kept torch-free here: models.darknet imports torch)
        """The network in eval mode, weights loaded."""
        from darkyolo.models.darknet import Darknet
        from darkyolo.models.io import load_checkpoint_state, load_model

        if self.checkpoint is None:
            return load_model(self.config, self.weights)
        model = Darknet(self.config)
        load_checkpoint_state(model, self.checkpoint, self.weights)
        if self.trained_size is not None:
            model.set_input_size(self.trained_size, self.trained_size)
        return model.eval()

    @property
    def trained_size(self) -> int | None:
        """The input side a darkyolo checkpoint trained at (None for other weights)."""
        size = (self.checkpoint or {}).get("img_size")
        return size if isinstance(size, int) and size > 0 else None


def resolve_model(
    model: str | Path | None = None,
    weights: str | Path | None = None,
    *,
    random_weights: bool = False,
    task: str | None = "detect",
) -> ModelSource:
    """Decide which cfg, weights and names ``model`` and ``weights`` mean (module docstring).
    ``task`` ``detect`` or ``classify`` refuses the other kind of network by name (``None``:
    either)."""
    source = _resolve(model, weights, random_weights)
    if task is not None and source.config.is_classifier != (task == "classify"):
        kind, use = (
            ("a classifier", "darkyolo classify val|predict")
            if source.config.is_classifier
            else ("a detector", "darkyolo detect|val")
        )
        raise DarkyoloError(f"{source.name} is {kind}: use {use}")
    return source


def _resolve(
    model: str | Path | None, weights: str | Path | None, random_weights: bool
) -> ModelSource:
    if random_weights and weights is not None:
        raise DarkyoloError("give either weights or random weights, not both")
    if model is None and weights is None:
        if random_weights:
            raise DarkyoloError("random weights need a cfg to build: name one with --model")
        model = DEFAULT_MODEL
    trained = trained_model(str(model)) if model is not None else None
    if trained is not None and weights is None and not random_weights:
        cfg, trained_weights, names = trained.files()
        return ModelSource(load_cfg(cfg), trained_weights, read_names(names), trained.name)

    requested: NetworkConfig | None = None
    names: list[str] | None = None
    if trained is not None:
        cfg, _, names_file = trained.files()
        requested, names = load_cfg(cfg), read_names(names_file)
    elif model is not None:
        requested = load_cfg(model)
        names = _names_beside(requested.source)
    if weights is None:
        if random_weights:
            label = f"{model} (random weights)"
            return ModelSource(requested, None, names, label)  # type: ignore[arg-type]
        raise DarkyoloError(
            f"{model} is an architecture without trained weights: give --weights FILE "
            f"(.weights or checkpoint), --random-weights for an untrained network, or a trained "
            f"model: {trained_model_list()}"
        )
    weights = Path(weights)
    if not is_checkpoint(weights):
        if requested is None:
            raise DarkyoloError(
                f"{weights}: a Darknet .weights file holds no cfg; name its architecture with "
                "--model (e.g. --model yolov3-tiny)"
            )
        return ModelSource(requested, weights, names, str(weights))
    return _checkpoint_source(weights, requested, str(model) if model is not None else None)


def _checkpoint_source(
    path: Path, requested: NetworkConfig | None, requested_name: str | None
) -> ModelSource:
    from darkyolo.models.io import checked_checkpoint, is_darkyolo_checkpoint, read_torch_file

    checkpoint = read_torch_file(path)
    if not is_darkyolo_checkpoint(checkpoint):
        if requested is None:  # a plain state dict: loadable, but only into a named cfg
            raise WeightsError(
                f"{path}: not a darkyolo checkpoint, so it holds no cfg; name its architecture "
                "with --model"
            )
        return ModelSource(requested, path, None, str(path), checkpoint=checkpoint)
    checkpoint = checked_checkpoint(checkpoint, path)  # checks the version
    if not isinstance(checkpoint.get("cfg"), str):
        raise WeightsError(f"{path}: the checkpoint holds no cfg")
    own = parse_cfg(checkpoint["cfg"], f"{path}:cfg")
    names = checkpoint.get("names")
    names = [str(n) for n in names] if isinstance(names, list) else None
    notes: tuple[str, ...] = ()
    if requested is not None:
        trained_from = checkpoint.get("options", {}).get("model", "its cfg")
        if architecture(own) != architecture(requested):
            raise WeightsError(
                f"{path}: holds a {own.num_classes}-class network trained from {trained_from}, "
                f"not the architecture of {requested_name}; leave out --model to use the "
                "checkpoint's own cfg"
            )
        if _settings(own) != _settings(requested):
            notes = (
                f"using the checkpoint's own cfg ({own.num_classes} classes, anchors and head "
                f"settings from training) in place of {requested_name}'s",
            )
    size = checkpoint.get("img_size")
    if isinstance(size, int) and (size, size) != (own.net.height, own.net.width):
        notes += (
            f"input {size}x{size}: the size {path.name} trained at (its cfg says "
            f"{own.net.width}x{own.net.height}; --img-size for another)",
        )
    return ModelSource(own, path, names, str(path), notes, checkpoint)


def _names_beside(cfg: str) -> list[str] | None:
    """The class names a cfg file carries beside it, ``<stem>.names`` (a training run writes
    ``model.cfg`` and ``model.names``), if there are any."""
    path = Path(cfg).with_suffix(".names")
    return read_names(path) if Path(cfg).is_file() and path.is_file() else None


def training_start(config: NetworkConfig) -> TrainedModel | None:
    """The trained model of :data:`TRAINING_STARTS` whose weights fit every layer of ``config``
    but the heads' last convolutions (:func:`architecture` with ``new_heads``), if one does: what ``darkyolo train``
    starts from when no ``--weights`` is given."""
    if not config.heads:
        return None
    for name in TRAINING_STARTS:
        model = trained_model(name)
        if model is not None and architecture(load_cfg(model.files()[0]), True) == architecture(
            config, True
        ):
            return model
    return None


def architecture(config: NetworkConfig, new_heads: bool = False) -> tuple:
    """The layers and their settings, leaving out what training may adapt: the class count (and
    so the outputs of :attr:`~darkyolo.darknet.cfg.NetworkConfig.class_layers`), the anchors and
    the heads' loss keys; with ``new_heads`` also the activation of the heads' last convolutions
    (layers a run trains anew, so any head's may stand there)."""
    adapted = set(config.class_layers)
    signature = []
    for index, spec in enumerate(config.layers):
        if isinstance(spec, ConvSpec) and index in adapted:
            activation = "" if new_heads else spec.activation
            signature.append(_fields(replace(spec, filters=0, activation=activation)))
        elif isinstance(spec, ConnectedSpec) and index in adapted:
            signature.append(_fields(replace(spec, output=0)))
        elif isinstance(spec, (YoloSpec, RegionSpec)):
            signature.append((type(spec).__name__, len(spec.mask)))
        else:
            signature.append(_fields(spec))
    return tuple(signature)


def _settings(config: NetworkConfig) -> tuple:
    """Every layer setting (anchors, classes, thresholds ...) but the cfg line numbers."""
    return tuple(_fields(spec) for spec in config.layers)


def _fields(spec: object) -> tuple:
    values = [(f.name, getattr(spec, f.name)) for f in fields(spec) if f.name != "line"]  # type: ignore[arg-type]
    return (type(spec).__name__, *values)
