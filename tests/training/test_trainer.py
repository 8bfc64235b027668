"""The trainer on a tiny cfg and a few BCCD pictures: Darknet's update, accumulation, NaN
handling, exact resume, freezing, class adaptation and what a run writes."""

from __future__ import annotations

import copy
import csv
import json

import numpy as np
import pytest
import torch

from darkyolo.darknet.cfg import parse_cfg
from darkyolo.darknet.weights import read_header
from darkyolo.losses import build_loss
from darkyolo.models.darknet import Darknet
from darkyolo.models.io import read_checkpoint, save_darknet_weights
from darkyolo.training.options import TrainOptions
from darkyolo.training.trainer import Trainer, TrainingError


def options(tmp_path, data, cfg, **changes) -> TrainOptions:
    base = dict(
        model=str(cfg),
        data=str(data),
        epochs=2,
        batch=4,
        subdivisions=1,
        img_size=64,
        workers=0,
        device="cpu",
        project=str(tmp_path / "runs"),
        progress=False,
        plots=False,
        val_batch=4,
        amp="off",  # float32: tests compare runs number for number (auto is bf16 on some CPUs)
    )
    base.update(changes)
    return TrainOptions(**base)


def quiet(message: str) -> None:
    pass


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def plain_cfg(tmp_path, make_cfg):
    path = tmp_path / "plain.cfg"
    path.write_text(make_cfg(batch_normalize=False))
    return path


def test_one_update_is_darknets_sgd(tmp_path, bccd_small, plain_cfg):
    """L = sum / batch and SGD(momentum, decay on kernels): the first update by hand."""
    trainer = Trainer(options(tmp_path, bccd_small, plain_cfg, ema=False, lr=0.01, burn_in=0, channels_last=False), log=quiet)  # fmt: skip
    trainer.setup()
    images, targets, _ = next(iter(trainer.loader))
    reference = copy.deepcopy(trainer.model)
    x = images.float() / 255
    total, _ = build_loss(reference)(reference(x), targets, tuple(x.shape[-2:]), 0)
    (total / 4).backward()
    decay = 0.0005
    expected = {}
    for name, param in reference.named_parameters():
        kernel = name.endswith("conv.weight")
        grad = param.grad + (decay * param.detach() if kernel else 0)
        expected[name] = param.detach() - 0.01 * grad  # first step: momentum buffer = grad
    loss, skipped = trainer.train_batch(images, targets)
    assert not skipped and loss == pytest.approx(total.item(), rel=1e-5)
    for name, param in trainer.model.named_parameters():
        torch.testing.assert_close(param.detach(), expected[name], rtol=1e-5, atol=1e-7)


def test_subdivisions_equal_one_big_batch(tmp_path, bccd_small, plain_cfg):
    common = dict(epochs=1, batch=4, augment=False, multi_scale=False, ema=False, lr=0.01, burn_in=0)  # fmt: skip
    split = Trainer(options(tmp_path, bccd_small, plain_cfg, subdivisions=2, name="a", **common), log=quiet)  # fmt: skip
    whole = Trainer(options(tmp_path, bccd_small, plain_cfg, subdivisions=1, name="b", **common), log=quiet)  # fmt: skip
    split.fit()
    whole.fit()
    assert split.plan.micro == 2 and whole.plan.micro == 4 and split.updates == whole.updates == 2
    for (name, a), b in zip(split.model.state_dict().items(), whole.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)


class NanOnCall:
    """A loss that turns NaN on its ``bad``-th call (box part)."""

    def __init__(self, model, bad: int) -> None:
        self.loss, self.calls, self.bad = build_loss(model), 0, bad

    def __call__(self, raw, targets, input_hw, seen):
        self.calls += 1
        total, parts = self.loss(raw, targets, input_hw, seen)
        if self.calls == self.bad:
            total = total + float("nan")
            parts = {**parts, "box": parts["box"] + float("nan")}
        return total, parts


def test_a_nan_loss_stops_naming_part_batch_and_images(tmp_path, bccd_small, tiny_cfg_file):
    opts = options(tmp_path, bccd_small, tiny_cfg_file, epochs=3)
    trainer = Trainer(opts, loss_builder=lambda m: NanOnCall(m, 3), log=quiet)
    with pytest.raises(TrainingError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert "non-finite loss in epoch 2, update 3" in message
    assert "box=nan" in message and "BloodImage_" in message
    assert "last good checkpoint" in message
    last = read_checkpoint(trainer.weights_dir / "last.pt")
    assert last["epoch"] == 1 and all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())  # fmt: skip


class NanGradientOnCall(NanOnCall):
    """A loss whose value stays finite but whose gradient is NaN on its ``bad``-th call."""

    def __call__(self, raw, targets, input_hw, seen):
        self.calls += 1
        total, parts = self.loss(raw, targets, input_hw, seen)
        if self.calls == self.bad:  # sqrt'(0) is infinite, times 0: NaN
            total = total + torch.sqrt(raw[0].sum() * 0.0)
        return total, parts


@pytest.mark.parametrize("clip_grad", [0.0, 1.0])
def test_a_nan_gradient_under_a_finite_loss_is_caught_before_the_step(
    tmp_path, bccd_small, tiny_cfg_file, clip_grad
):
    opts = options(tmp_path, bccd_small, tiny_cfg_file, epochs=3, clip_grad=clip_grad)
    trainer = Trainer(opts, loss_builder=lambda m: NanGradientOnCall(m, 3), log=quiet)
    with pytest.raises(TrainingError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert "non-finite gradient (the loss was finite) in epoch 2, update 3" in message
    assert "BloodImage_" in message
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_a_nan_loss_can_be_skipped_and_counted(tmp_path, bccd_small, tiny_cfg_file):
    opts = options(tmp_path, bccd_small, tiny_cfg_file, epochs=2, nan="skip")
    logged: list[str] = []
    result = Trainer(opts, loss_builder=lambda m: NanOnCall(m, 2), log=logged.append).fit()
    assert result.nan_skips == 1 and result.updates == 4
    assert any("update skipped (1/10)" in line for line in logged)
    for value in torch.load(result.run_dir / "weights" / "last.pt", weights_only=True)["model"].values():  # fmt: skip
        assert torch.isfinite(value.float()).all()


def test_resume_continues_exactly(tmp_path, bccd_small, tiny_cfg_file):
    """Augmentation, multi-scale, EMA and BN on: 1 epoch + resume == 2 epochs straight."""
    straight = Trainer(options(tmp_path, bccd_small, tiny_cfg_file, name="straight"), log=quiet).fit()  # fmt: skip
    first = Trainer(options(tmp_path, bccd_small, tiny_cfg_file, name="cut"), log=quiet)
    first.fit(stop_after=1)
    assert read_checkpoint(first.weights_dir / "last.pt")["epoch"] == 1
    resumed = Trainer(TrainOptions(resume=str(first.run_dir), workers=0, progress=False), log=quiet).fit()  # fmt: skip
    assert resumed.run_dir == first.run_dir and resumed.updates == straight.updates == 4
    a = read_checkpoint(straight.run_dir / "weights" / "last.pt")
    b = read_checkpoint(resumed.run_dir / "weights" / "last.pt")
    assert a["seen"] == b["seen"] == 16
    for key in ("model", "train_model"):
        for name, value in a[key].items():
            torch.testing.assert_close(b[key][name], value, rtol=0, atol=0, msg=f"{key} {name}")
    rows = read_csv(resumed.run_dir / "results.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"]


def test_freeze_keeps_the_first_layers(tmp_path, bccd_small, tiny_cfg_file, make_cfg):
    donor = Darknet(parse_cfg(make_cfg())).randomize_(3)
    weights = tmp_path / "donor.weights"
    save_darknet_weights(donor, weights)
    trainer = Trainer(options(tmp_path, bccd_small, tiny_cfg_file, weights=str(weights), freeze=2, epochs=1, lr=0.01, burn_in=0), log=quiet)  # fmt: skip
    trainer.fit()
    frozen, trained = trainer.model.layers[0], trainer.model.layers[2]
    for name, value in frozen.state_dict().items():
        torch.testing.assert_close(value, donor.layers[0].state_dict()[name], msg=name)
    assert not torch.equal(trained.conv.weight, donor.layers[2].conv.weight)
    assert not torch.equal(trained.bn.running_mean, donor.layers[2].bn.running_mean)


def test_classes_adapt_to_the_data_and_weights_transfer(tmp_path, bccd_small, make_cfg):
    cfg = tmp_path / "coco-tiny.cfg"
    cfg.write_text(make_cfg(classes=80))
    donor = Darknet(parse_cfg(cfg.read_text())).randomize_(4)
    weights = tmp_path / "coco.weights"
    save_darknet_weights(donor, weights)
    logged: list[str] = []
    trainer = Trainer(options(tmp_path, bccd_small, cfg, weights=str(weights), epochs=1), log=logged.append)  # fmt: skip
    result = trainer.fit()
    text = "\n".join(logged)
    assert "heads adapted from 80 to 3 classes" in text
    assert "skipped 4 tensors of another shape" in text
    assert trainer.model.num_classes == 3
    checkpoint = read_checkpoint(result.run_dir / "weights" / "last.pt")
    assert parse_cfg(checkpoint["cfg"]).num_classes == 3
    assert checkpoint["names"] == ["Platelets", "RBC", "WBC"]


def test_a_run_writes_logs_plots_and_weights(tmp_path, bccd_small, tiny_cfg_file):
    result = Trainer(
        options(tmp_path, bccd_small, tiny_cfg_file, log_interval=1, plots=True), log=quiet
    ).fit()
    run = result.run_dir
    assert (torch.tensor([1e-20]) * 1e-20).item() > 0  # flush-to-zero was for the run only
    for name in ("results.csv", "steps.csv", "results.png", "pr_curve.png", "metrics.json", "model.cfg", "options.json"):  # fmt: skip
        assert (run / name).is_file(), name
    rows = read_csv(run / "results.csv")
    assert len(rows) == 2 and {"loss", "box", "obj", "noobj", "cls", "lr", "map50", "map"} <= set(rows[0])  # fmt: skip
    assert all(np.isfinite(float(r["map"])) for r in rows)
    steps = read_csv(run / "steps.csv")
    assert [int(r["step"]) for r in steps] == [1, 2, 3, 4]
    checkpoint = read_checkpoint(run / "weights" / "best.pt")
    for key in ("cfg", "model", "train_model", "optimizer", "ema", "epoch", "updates", "seen", "rng", "options"):  # fmt: skip
        assert key in checkpoint
    header = read_header((run / "weights" / "best.weights").read_bytes(), "best.weights")
    assert header.seen == checkpoint["seen"] == 8 * checkpoint["epoch"]
    model = Darknet(parse_cfg(checkpoint["cfg"]))
    from darkyolo.models.io import load_weights

    load_weights(model, run / "weights" / "best.weights")  # the EMA weights in Darknet's format
    torch.testing.assert_close(model.state_dict()["layers.0.conv.weight"], checkpoint["model"]["layers.0.conv.weight"])  # fmt: skip


def test_bad_options_are_explained(tmp_path, bccd_small, tiny_cfg_file):
    from darkyolo.errors import OptionError

    with pytest.raises(OptionError, match="split evenly"):
        Trainer(options(tmp_path, bccd_small, tiny_cfg_file, batch=6, subdivisions=4), log=quiet).setup()  # fmt: skip
    with pytest.raises(OptionError, match="multiple of 32"):
        Trainer(options(tmp_path, bccd_small, tiny_cfg_file, img_size=70), log=quiet).setup()
    with pytest.raises(OptionError, match="fp16 needs a CUDA"):
        Trainer(options(tmp_path, bccd_small, tiny_cfg_file, amp="fp16"), log=quiet).setup()


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_without_it_says_it_is_emulated(tmp_path, bccd_small, tiny_cfg_file, monkeypatch, native):  # fmt: skip
    monkeypatch.setattr("darkyolo.training.trainer.cpu_has_native_bf16", lambda: native)
    lines: list[str] = []
    Trainer(options(tmp_path, bccd_small, tiny_cfg_file, amp="bf16"), log=lines.append).setup()
    warned = [line for line in lines if "emulated" in line]
    assert len(warned) == (0 if native else 1)
    assert not warned or "--amp off" in warned[0]


def test_a_trained_models_name_starts_from_its_weights(tmp_path, bccd_small):
    """``--model yolov3-tiny-coco``: its cfg, adapted to the data's classes, and its official
    weights for every tensor but the heads'."""
    logged: list[str] = []
    trainer = Trainer(options(tmp_path, bccd_small, "yolov3-tiny-coco", epochs=1), log=logged.append)  # fmt: skip
    trainer.setup()
    text = "\n".join(logged)
    assert "heads adapted from 80 to 3 classes" in text
    assert "yolov3-tiny.weights" in text and "skipped 4 tensors of another shape" in text
    first = trainer.model.conv_layers()[0].conv.weight
    official = Darknet(trainer.config)
    from darkyolo.models.zoo import resolve_model

    coco = resolve_model("yolov3-tiny-coco").build()
    assert torch.equal(first, coco.conv_layers()[0].conv.weight)
    assert not torch.equal(first, official.conv_layers()[0].conv.weight)


def test_a_cfg_with_a_byte_order_mark_trains(tmp_path, bccd_small, make_cfg):
    cfg = tmp_path / "bom.cfg"
    cfg.write_bytes(b"\xef\xbb\xbf" + make_cfg().encode())
    trainer = Trainer(options(tmp_path, bccd_small, cfg, epochs=1), log=quiet)
    trainer.setup()
    assert trainer.config.num_classes == 3


@pytest.mark.parametrize(
    ("edit", "key", "message"),
    [
        (
            ("[net]\n", "[net]\nangle=10\n"),
            "angle",
            "angle=10: rotation is a classifier augmentation",
        ),
    ],
)
def test_keys_training_does_not_do_are_refused(tmp_path, bccd_small, make_cfg, edit, key, message):
    from darkyolo.errors import ConfigError

    cfg = tmp_path / "x.cfg"
    cfg.write_text(make_cfg().replace(*edit, 1))
    with pytest.raises(ConfigError, match=message) as error:
        Trainer(options(tmp_path, bccd_small, cfg, epochs=1), log=quiet).setup()
    assert error.value.key == key and error.value.line is not None


def test_anchors_that_fit_badly_are_fitted_to_the_data(tmp_path, bccd_small):
    """COCO's yolov3-tiny anchors on blood cells: k-means on the training boxes fits far better,
    so a run from scratch trains with those and says so; the plan holds them, and so do the run's
    ``plan.json`` and ``model.cfg``. ``anchors="cfg"`` keeps the cfg's."""
    logged: list[str] = []
    trainer = Trainer(options(tmp_path, bccd_small, "yolov3-tiny", img_size=320, name="auto"), log=logged.append)  # fmt: skip
    trainer.setup()
    said = [line for line in logged if line.startswith("anchors: ")]
    assert len(said) == 1 and "k-means" in said[0]
    fitted = trainer.model.heads[0].spec.anchors
    assert fitted != parse_cfg(trainer.plan.cfg_given).heads[0].anchors
    run_cfg = parse_cfg((trainer.run_dir / "model.cfg").read_text())
    assert [h.anchors for h in run_cfg.heads] == [fitted, fitted]  # both heads
    written = json.loads((trainer.run_dir / "plan.json").read_text())
    assert written["anchors"] == [[list(pair) for pair in fitted]] * 2
    assert parse_cfg(written["cfg_text"]).heads[0].anchors == fitted
    logged.clear()
    kept = Trainer(options(tmp_path, bccd_small, "yolov3-tiny", img_size=320, name="cfg", anchors="cfg"), log=logged.append)  # fmt: skip
    kept.setup()
    assert not [line for line in logged if line.startswith("anchors: ")]
    assert kept.model.heads[0].spec.anchors == parse_cfg(kept.plan.cfg_text).heads[0].anchors


def test_weights_saved_without_validation_carry_recomputed_statistics(
    tmp_path, bccd_small, tiny_cfg_file
):
    """A run without a val split recomputes the batch-norm statistics of the weights it keeps, as
    a validated run does before scoring them: the saved statistics are the recalibrated ones."""
    no_val = bccd_small.with_name("no-val.data")
    lines = bccd_small.read_text().splitlines(keepends=True)
    no_val.write_text("".join(line for line in lines if not line.startswith("valid")))
    trainer = Trainer(options(tmp_path, no_val, tiny_cfg_file, epochs=1, bn_recalib=8), log=quiet)
    trainer.fit()
    assert not trainer.val_records
    saved = read_checkpoint(trainer.weights_dir / "last.pt")["model"]
    model = copy.deepcopy(trainer.ema.module)
    model.load_state_dict(saved)
    trainer.recalibrate(model)  # the same seeded pictures of the same epoch
    stats = {k: v for k, v in model.state_dict().items() if k.endswith(("running_mean", "running_var"))}  # fmt: skip
    assert stats
    for name, value in stats.items():
        torch.testing.assert_close(saved[name], value, msg=name)


def test_an_earlier_best_without_validation_is_recalibrated_once_at_the_end(
    tmp_path, bccd_small, tiny_cfg_file, monkeypatch
):
    """Without validation, a mid-run ``best.pt`` is not recalibrated at each improving epoch
    (nearly every one); a best epoch that stays best gets its statistics once, after the final
    epoch: two recomputations in all, the final ``last.pt`` and the mended ``best.pt``."""
    no_val = bccd_small.with_name("no-val.data")
    lines = bccd_small.read_text().splitlines(keepends=True)
    no_val.write_text("".join(line for line in lines if not line.startswith("valid")))
    logged: list[str] = []
    opts = options(tmp_path, no_val, tiny_cfg_file, epochs=3, bn_recalib=8)
    trainer = Trainer(opts, log=logged.append)
    train_epoch, recalibrate = trainer._train_epoch, trainer.recalibrate
    rising = lambda steps_log: {**train_epoch(steps_log), "loss": float(trainer.epoch + 1)}  # noqa: E731
    monkeypatch.setattr(trainer, "_train_epoch", rising)  # epoch 1 has the lowest loss
    calls: list[int] = []
    monkeypatch.setattr(
        trainer, "recalibrate", lambda m: calls.append(trainer.epoch) or recalibrate(m)
    )
    trainer.fit()
    assert trainer.best_epoch == 1 and calls == [3, 3]
    assert "best.pt (epoch 1): batch-norm statistics recomputed" in logged
    saved = read_checkpoint(trainer.weights_dir / "best.pt")
    assert saved["epoch"] == 1
    model = copy.deepcopy(trainer.ema.module)
    model.load_state_dict(saved["model"])
    recalibrate(model)
    for name, value in model.state_dict().items():
        if name.endswith(("running_mean", "running_var")):
            torch.testing.assert_close(saved["model"][name], value, msg=name)


def test_batch_norm_statistics_come_from_pictures_drawn_as_training_draws_them(
    tmp_path, bccd_small, tiny_cfg_file, monkeypatch
):
    """Recalibration sees the training set's augmented pictures in micro-batches at sides spread
    over the multi-scale range, never plain letterboxed pictures at the base side (which shift
    every box's size)."""
    import darkyolo.training.trainer as trainer_module

    shapes: list[tuple[int, ...]] = []
    monkeypatch.setattr(
        trainer_module,
        "recalibrate_batch_norm",
        lambda model, batches, device: shapes.extend(tuple(b.shape) for b in batches) or 0,
    )
    opts = options(tmp_path, bccd_small, tiny_cfg_file, multi_scale=True, img_size=96, bn_recalib=8)
    trainer = Trainer(opts, log=quiet)
    trainer.setup()
    keys: list[tuple[int, int, int]] = []
    draw = type(trainer.dataset).__getitem__
    monkeypatch.setattr(
        type(trainer.dataset), "__getitem__", lambda self, key: keys.append(key) or draw(self, key)
    )
    trainer.recalibrate(trainer.model)
    assert trainer.dataset.augment is not None and len(set(k[0] for k in keys)) == 8
    assert all(k[2] == trainer.epoch for k in keys)
    sides = sorted(trainer.plan.sizes)
    assert shapes == [
        (trainer.plan.micro, 3, side, side)
        for side in (sides[len(sides) // 4], sides[3 * len(sides) // 4])
    ]
