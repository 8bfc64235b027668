"""A run's network: Darknet's initialisation, pretrained weights, frozen layers.

* :func:`build_network` makes the network of a plan: initialised, its start weights loaded, batch
  norm momentum set, the first layers frozen (what :meth:`darkyolo.tasks.base.Task.network` does
  for a Darknet cfg).
* :func:`load_pretrained` fills a model from a Darknet ``.weights`` file (full or a ``.conv.N``
  prefix) or a darkyolo checkpoint, tensor by tensor; tensors whose shape differs (a head made for
  another class count) are skipped and listed.
* :func:`freeze_layers` stops gradients in the first N cfg layers and fixes their batch norm.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from darkyolo.darknet.cfg import NetworkConfig
from darkyolo.darknet.weights import is_checkpoint
from darkyolo.errors import ConfigError, OptionError, WeightsError
from darkyolo.models.darknet import Darknet
from darkyolo.models.io import load_weights, model_state, read_torch_file, state_dict_misfit
from darkyolo.models.layers import ConvBNAct, FrozenBatchNorm2d

if TYPE_CHECKING:
    from darkyolo.training.plan import TrainPlan


@dataclass
class TransferReport:
    """What :func:`load_pretrained` did."""

    source: str
    loaded: int = 0
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    #: layers left out on purpose (new heads)
    left: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [f"pretrained weights {self.source}: {self.loaded} tensors loaded"]
        if self.left:
            lines.append(
                f"  layers {', '.join(self.left)} (the heads' last convolutions) start anew"
            )
        if self.skipped:
            lines.append(
                f"  skipped {len(self.skipped)} tensors of another shape (new heads for this "
                f"data's classes): {', '.join(self.skipped[:6])}"
                + (" ..." if len(self.skipped) > 6 else "")
            )
        if self.missing:
            lines.append(f"  {len(self.missing)} tensors not in the file keep their initial values")
        return lines


def _copy_matching(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    report: TransferReport,
    leave: tuple[int, ...] = (),
) -> None:
    left = tuple(f"layers.{i}." for i in leave)
    if left:
        report.left = sorted({k.split(".")[1] for k in state if k.startswith(left)}, key=int)
        state = {k: v for k, v in state.items() if not k.startswith(left)}
    own = model.state_dict()
    mismatched, missing = state_dict_misfit(own, state)
    report.skipped = [
        f"{name} {tuple(getattr(state[name], 'shape', ()))} -> {tuple(own[name].shape)}"
        for name in mismatched
    ]
    skip = set(mismatched)
    chosen = {k: v for k, v in state.items() if k in own and k not in skip}
    report.loaded = len(chosen)
    report.missing = [name for name in missing if not name.startswith(left)] if left else missing
    model.load_state_dict(chosen, strict=False)


def load_pretrained(
    model: Darknet,
    path: str | Path,
    source_config: NetworkConfig | None = None,
    leave: tuple[int, ...] = (),
) -> TransferReport:
    """Load weights made for ``source_config`` (default: the model's own cfg) into ``model``,
    but not into the layers ``leave`` (new heads keep their initial values).

    A ``.weights`` file is read into a model built from ``source_config`` (accepting a
    ``.conv.N`` prefix), then copied over tensor by tensor; a checkpoint's model state likewise.
    Tensors of another shape are skipped and reported.
    """
    path = Path(path)
    report = TransferReport(str(path))
    if is_checkpoint(path):
        _copy_matching(model, model_state(read_torch_file(path), path), report, leave)
        return report
    donor = Darknet(source_config or model.config)
    try:
        filled = load_weights(donor, path, allow_prefix=True)
    except WeightsError as error:
        raise WeightsError(
            f"{error} (the weights must fit the cfg given with --model before its classes are "
            "adapted to the data)"
        ) from None
    # only what the file held: a .conv.N prefix leaves the donor's later layers unset, and those
    # must not replace the model's own initialisation
    held = {id(layer) for layer in donor.weighted_layers()[:filled]}
    prefixes = tuple(f"layers.{i}." for i, layer in enumerate(donor.layers) if id(layer) in held)
    state = {k: v for k, v in donor.state_dict().items() if k.startswith(prefixes)}
    _copy_matching(model, state, report, leave)
    if hasattr(donor, "weights_header"):
        model.weights_header = donor.weights_header
    return report


#: the objectness prior of ``--init darknet`` when ``--obj-prior`` is not given
DEFAULT_OBJ_PRIOR = 0.01


@torch.no_grad()
def init_from_scratch(model: Darknet, obj_prior: float | None = None) -> None:
    """Darknet's initialisation for training from scratch, plus an optional objectness prior.

    Conv kernels ``~ N(0, 2 / fan_in)`` (pjreddie ``make_convolutional_layer``: ``scale =
    sqrt(2 / (size*size*c/groups))`` times a standard normal), conv biases 0, batch-norm scales 1
    and shifts 0. PyTorch's default kernels are about 2.5 times smaller, which makes Darknet's
    learning rate effectively several times larger behind batch norm.

    ``obj_prior = p`` sets each head's objectness bias to ``log(p / (1 - p))`` (the "prior
    probability" initialisation of RetinaNet), so the first updates are not spent silencing the
    thousands of no-object cells.
    """
    for layer in model.conv_layers():
        kernel = layer.conv.weight
        kernel.normal_(0.0, (2.0 / kernel[0].numel()) ** 0.5)
        if layer.conv.bias is not None:
            layer.conv.bias.zero_()
        if layer.bn is not None:
            layer.bn.weight.fill_(1.0)
            layer.bn.bias.zero_()
            layer.bn.reset_running_stats()
    if obj_prior is None:
        return
    if not 0 < obj_prior < 1:
        raise ConfigError(f"the objectness prior must lie in (0, 1), got {obj_prior}")
    for index, head in zip(model.head_indices, model.heads):
        conv = model.layers[index - 1]
        bias = getattr(getattr(conv, "conv", None), "bias", None)
        if bias is None:
            continue
        stride = 5 + head.num_classes
        bias.view(head.num_anchors, stride)[:, 4] = math.log(obj_prior / (1 - obj_prior))


def freeze_layers(model: Darknet, count: int) -> list[nn.Module]:
    """Stop gradients in cfg layers ``0..count-1``: their parameters stop requiring gradients and
    their batch norms become :class:`~darkyolo.models.layers.FrozenBatchNorm2d` (fixed
    statistics whatever the mode). Returns those frozen batch norms."""
    if count < 0 or count > len(model.layers):
        raise OptionError(f"--freeze {count}: the model has {len(model.layers)} layers")
    frozen: list[nn.Module] = []
    for layer in list(model.layers)[:count]:
        for param in layer.parameters():
            param.requires_grad_(False)
        if isinstance(layer, ConvBNAct) and isinstance(layer.bn, nn.BatchNorm2d):
            layer.bn = FrozenBatchNorm2d(layer.bn)
            frozen.append(layer.bn)
    return frozen


def build_network(plan: TrainPlan, fresh: bool, log: Callable[[str], None]) -> Darknet:
    """The network for ``plan``'s cfg: Darknet's initialisation (``--init darknet``, from
    scratch), the plan's pretrained weights (``fresh`` runs only: a resume restores its own),
    batch-norm momentum (``--bn-momentum``; Darknet's 0.01 lags far behind in short runs) and the
    first ``--freeze`` layers frozen."""
    opt = plan.options
    model = Darknet(plan.config)
    if opt.init == "darknet" and fresh:
        prior = opt.obj_prior if opt.obj_prior is not None else DEFAULT_OBJ_PRIOR
        init_from_scratch(model, prior)
    if fresh and plan.pretrained:
        heads = () if plan.pretrained_heads else tuple(model.config.class_layers)
        for line in load_pretrained(model, plan.pretrained, plan.pretrained_config, heads).lines():
            log(line)
    if opt.bn_momentum is not None:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = opt.bn_momentum
    if opt.freeze:
        freeze_layers(model, opt.freeze)
        log(f"froze layers 0..{opt.freeze - 1} (their batch norm keeps its statistics)")
    return model
