"""The training plan: options, cfg and data resolved into one frozen plan, without a network."""

from __future__ import annotations

import json

import pytest

from darkyolo.darknet.cfg import load_cfg
from darkyolo.errors import OptionError
from darkyolo.models import darknet
from darkyolo.models.zoo import resolve_model
from darkyolo.training.options import TrainOptions
from darkyolo.training.planner import plan_training
from darkyolo.training.recipes import default_loss
from darkyolo.training.trainer import Trainer


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """A plan builds no network: building one here fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("plan_training built a network")

    monkeypatch.setattr(darknet.Darknet, "__init__", refuse)


def test_defaults_come_from_the_cfg_and_the_data(bccd_small):
    plan = plan_training(TrainOptions(model="yolov3-tiny", data=str(bccd_small), weights="none"))
    assert plan.options.loss == "darknet"
    assert plan.names == ("Platelets", "RBC", "WBC") and plan.classes_from == 80
    assert plan.notes[0] == "training mode darknet (the default for this cfg's heads; see --loss)"
    assert (
        plan.notes[1] == f"cfg {plan.cfg_source}: heads adapted from 80 to 3 classes (the data's)"
    )
    assert plan.notes[2].startswith("iou_thresh=0.213 in the 2 [yolo] section(s) that set none")
    assert [head.iou_thresh for head in plan.config.heads] == [0.213, 0.213]
    assert [head.iou_thresh for head in plan.config_given.heads] == [1.0, 1.0]  # as written
    assert plan.config.num_classes == 3 and plan.config_given.num_classes == 80
    assert (plan.batch, plan.subdivisions, plan.micro) == (64, 2, 32)  # yolov3-tiny.cfg's
    assert plan.img_size == 416 and plan.sizes == tuple(range(320, 609, 32))  # random=1
    assert plan.augment is not None and plan.augment.jitter == pytest.approx(0.3)
    assert plan.augment.hue == pytest.approx(0.1) and plan.augment.saturation == pytest.approx(1.5)
    assert (plan.lr, plan.momentum, plan.decay) == (0.001, 0.9, 0.0005)
    assert plan.lr_policy == "steps" and plan.pretrained is None and plan.ignored == ()
    epochs, total, schedule, _ = plan.schedule(updates_per_epoch=5)
    assert (epochs, total) == (100, 500) and schedule.burn_in == 15  # 3 warm-up epochs
    assert schedule.steps == (400, 450)
    assert (plan.options.mosaic, plan.options.close_mosaic, plan.options.clip_grad) == (0, 0, 0)
    json.dumps(plan.to_dict())  # printable as plan.json


@pytest.mark.parametrize(
    ("model", "mode"),
    [("yolov3-tiny-newcoords", "aligned"), ("yolov3-tiny", "darknet")],
)
def test_the_default_training_mode_follows_the_heads(bccd_small, model, mode):
    """Aligned for new_coords [yolo] heads; Darknet's own losses for classic [yolo] and [region]."""
    plan = plan_training(TrainOptions(model=model, data=str(bccd_small), epochs=30, batch=16))
    assert plan.options.loss == mode
    assert f"training mode {mode} (the default for this cfg's heads; see --loss)" in plan.notes
    given = plan_training(TrainOptions(model=model, data=str(bccd_small), loss="scaled"))
    assert given.options.loss == "scaled" and not any("training mode" in n for n in given.notes)
    assert default_loss(load_cfg("yolov2-tiny")) == "darknet"  # [region]


def test_the_scaled_modes_recipe(bccd_small):
    """YOLOv5's hyper-parameters in darkyolo's units; whatever is given explicitly wins."""
    scaled = dict(model="yolov3-tiny", data=str(bccd_small), loss="scaled")
    plan = plan_training(TrainOptions(**scaled, epochs=30, batch=16))
    opt = plan.options
    assert opt.loss == "scaled" and plan.lr == pytest.approx(0.16)  # 0.01 per image x 16
    assert "learning rate 0.16: 0.01 per image x batch 16" in plan.notes
    assert (plan.momentum, plan.decay, plan.lr_policy) == (
        0.937,
        pytest.approx(0.0005 / 64),
        "cosine",
    )
    assert (opt.mosaic, opt.close_mosaic, opt.clip_grad) == (1.0, 10, pytest.approx(10 / 64))
    assert plan.augment.scale == (0.5, 1.5) and plan.augment.mosaic == 1.0
    assert plan_training(TrainOptions(**scaled, epochs=9)).options.close_mosaic == 3
    given = TrainOptions(**scaled, lr=0.05, mosaic=0.5, close_mosaic=0, momentum=0.9, lr_policy="steps")  # fmt: skip
    plan = plan_training(given)
    assert (plan.lr, plan.options.mosaic, plan.options.close_mosaic, plan.momentum, plan.lr_policy) == (0.05, 0.5, 0, 0.9, "steps")  # fmt: skip


def test_the_aligned_modes_recipe_takes_ultralytics_optimiser_for_short_runs(bccd_small):
    """AdamW at 0.04 / (4 + classes), beta1 0.9, decay 5e-4; the YOLOv5 augmentation with
    ultralytics' hue; flags win."""
    aligned = dict(model="yolov3-tiny", data=str(bccd_small), loss="aligned", epochs=30, batch=16)
    plan = plan_training(TrainOptions(**aligned))
    assert (plan.optimizer, plan.options.optimizer) == ("adamw", "adamw")
    assert plan.lr == pytest.approx(0.005714)  # 0.04 / (4 + 3)
    assert "learning rate 0.005714: 0.04 / (4 + 3 classes)" in plan.notes
    assert (plan.momentum, plan.decay, plan.lr_policy) == (0.9, 0.0005, "cosine")
    assert (plan.options.mosaic, plan.options.close_mosaic) == (1.0, 10)
    assert plan.augment is not None and plan.augment.hue == pytest.approx(0.015)  # cfg: 0.1
    plan = plan_training(TrainOptions(**aligned, optimizer="sgd", lr=0.01, hue=0.05))
    assert (plan.optimizer, plan.lr) == ("sgd", 0.01)
    assert plan.augment is not None and plan.augment.hue == pytest.approx(0.05)
    darknet_mode = plan_training(TrainOptions(model="yolov3-tiny", data=str(bccd_small)))
    assert darknet_mode.optimizer == "sgd"


def test_flags_override_the_cfg(bccd_small):
    options = TrainOptions(
        model="yolov3-tiny", data=str(bccd_small), batch=16, img_size=320, multi_scale=False,
        jitter=0.1, lr=0.002, lr_policy="cosine", optimizer="adamw", augment=True,
    )  # fmt: skip
    plan = plan_training(options)
    assert (plan.batch, plan.subdivisions, plan.micro) == (16, 1, 16)
    assert plan.sizes == (320,) and plan.augment.jitter == pytest.approx(0.1)
    assert (plan.lr, plan.lr_policy, plan.optimizer) == (0.002, "cosine", "adamw")
    assert plan_training(TrainOptions(model="yolov3-tiny", data=str(bccd_small), augment=False)).augment is None  # fmt: skip


def test_max_batches_means_darknets_schedule(bccd_small):
    plan = plan_training(TrainOptions(model="yolov3-tiny", data=str(bccd_small), max_batches=100, loss="darknet"))  # fmt: skip
    assert plan.lr_policy == "cfg"
    epochs, total, schedule, notes = plan.schedule(updates_per_epoch=10)
    assert (epochs, total) == (10, 100) and schedule.burn_in == 25  # min(cfg 1000, total / 4)
    assert schedule.steps == (80, 90) and "lie beyond the 100 updates" in notes[0]


def test_a_trained_model_brings_its_weights(bccd_small):
    plan = plan_training(TrainOptions(model="yolov3-tiny-coco", data=str(bccd_small)))
    assert plan.pretrained == str(resolve_model("yolov3-tiny-coco").weights)
    assert plan.pretrained_heads and plan.pretrained_cfg is None


@pytest.mark.parametrize("model", ["yolov3-tiny", "yolov3-tiny-newcoords"])
def test_a_detector_starts_from_the_coco_weights_where_they_fit(bccd_small, model):
    """Every layer of both tiny cfgs but the heads' last convolutions fits Darknet's COCO
    yolov3-tiny weights: a run starts from them, with new heads, and says so in one line;
    ``--weights none`` trains from scratch. A cfg they do not fit starts from scratch."""
    plan = plan_training(TrainOptions(model=model, data=str(bccd_small)))
    assert plan.pretrained == str(resolve_model("yolov3-tiny-coco").weights)
    assert not plan.pretrained_heads and plan.pretrained_config.net.width == 416
    assert plan.notes[0].startswith("starting from yolov3-tiny-coco's weights")
    scratch = plan_training(TrainOptions(model=model, data=str(bccd_small), weights="none"))
    assert scratch.pretrained is None and not any("starting from" in n for n in scratch.notes)
    for other in ("yolov3", "yolov3-spp"):
        assert plan_training(TrainOptions(model=other, data=str(bccd_small))).pretrained is None


def test_a_resume_keeps_its_own_options_and_says_which_flags_it_ignores(bccd_small, make_cfg):
    stored = TrainOptions(model="yolov3-tiny", data=str(bccd_small), lr=0.01, epochs=10, mosaic=0.0)
    resume = {"options": stored.to_dict(), "cfg": make_cfg(), "_path": "runs/exp/weights/last.pt"}
    given = TrainOptions(resume="runs/exp", lr=0.5, mosaic=0.5, workers=0, threads=2, epochs=20)
    plan = plan_training(given, resume=resume)
    assert plan.options.lr == 0.01 and plan.options.mosaic == 0.0  # the run's own
    assert plan.options.workers == 0 and plan.options.threads == 2  # the machine's, as given
    assert plan.options.epochs == 20
    assert plan.ignored == ("--lr", "--mosaic")
    assert plan.resumed_from == "runs/exp/weights/last.pt"
    stored.threads = 1  # not given again: the run's own thread count (its sums' order) stays
    resume["options"] = stored.to_dict()
    assert plan_training(TrainOptions(resume="runs/exp"), resume=resume).options.threads == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"optimizer": "rmsprop"}, "--optimizer must be one of sgd, adam, adamw"),
        ({"lr_policy": "exp"}, "--lr-policy must be one of"),
        ({"batch": 6, "subdivisions": 4}, "must split evenly"),
        ({"img_size": 70}, "multiple of 32"),
        ({"init": "torch", "obj_prior": 0.5}, "--obj-prior belongs to --init darknet"),
        ({"jitter": 1.2}, r"--jitter must be a number from 0 up to \(not including\) 1, got 1\.2"),
    ],
)
def test_bad_options_are_option_errors(bccd_small, changes, message):
    with pytest.raises(OptionError, match=message):
        plan_training(TrainOptions(model="yolov3-tiny", data=str(bccd_small), **changes))


def test_a_run_writes_its_plan(tmp_path, bccd_small, tiny_cfg_file, monkeypatch):
    monkeypatch.undo()  # this one builds the network
    options = TrainOptions(model=str(tiny_cfg_file), data=str(bccd_small), epochs=1, batch=4,
                           img_size=64, workers=0, device="cpu", project=str(tmp_path / "runs"),
                           progress=False, plots=False)  # fmt: skip
    trainer = Trainer(options, log=lambda _: None)
    trainer.setup()
    written = json.loads((trainer.run_dir / "plan.json").read_text())
    assert written["batch"] == 4 and written["names"] == ["Platelets", "RBC", "WBC"]
    assert written["options"]["epochs"] == 1


def test_a_classifier_plan(tmp_path):
    """A classifier cfg: class folders, Darknet's crops and poly, the rate scaled to the batch."""
    from tiny import class_folders

    from darkyolo.classify.data import CropOptions

    data = class_folders(tmp_path / "shapes", per_class=2)
    plan = plan_training(TrainOptions(model="darknet19", data=str(data), batch=32, epochs=2))
    assert plan.names == ("blue", "red") and plan.config.num_classes == 2
    assert plan.lr == pytest.approx(0.1 * 32 / 128) and plan.lr_policy == "cfg"
    assert isinstance(plan.augment, CropOptions) and plan.augment.angle == 7
    assert any("scaled to batch 32" in note for note in plan.notes)
    assert any("outputs adapted from 1000 to 2 classes" in note for note in plan.notes)
    given = plan_training(TrainOptions(model="darknet19", data=str(data), batch=32, lr=0.01))
    assert given.lr == 0.01
    _, _, schedule, _ = plan.schedule(10)
    assert schedule.policy == "poly" and schedule.total == 20 and schedule.burn_in == 5


def test_the_last_yolo_layers_resize_is_the_default_zoom(tmp_path, bccd_small):
    from darkyolo.darknet.cfg import resolve_cfg_path

    text = resolve_cfg_path("yolov3-tiny").read_text()
    cut = text.rindex("random=1")
    cfg = tmp_path / "resize.cfg"
    cfg.write_text(text[:cut] + "resize=1.5\n" + text[cut:])
    plan = plan_training(TrainOptions(model=str(cfg), data=str(bccd_small)))
    assert plan.augment.scale == pytest.approx((1 / 1.5, 1.5))
    given = plan_training(TrainOptions(model=str(cfg), data=str(bccd_small), scale=(0.9, 1.1)))
    assert given.augment.scale == (0.9, 1.1)
    plain = plan_training(TrainOptions(model="yolov3-tiny", data=str(bccd_small), loss="darknet"))
    assert plain.augment.scale == (1.0, 1.0)


def test_the_cfgs_own_iou_thresh_wins_and_other_modes_keep_it(tmp_path, bccd_small):
    from darkyolo.darknet.cfg import resolve_cfg_path

    text = resolve_cfg_path("yolov3-tiny").read_text().replace("[yolo]\n", "[yolo]\niou_thresh=1\n")
    cfg = tmp_path / "one-anchor.cfg"
    cfg.write_text(text)
    own = plan_training(TrainOptions(model=str(cfg), data=str(bccd_small)))
    assert [head.iou_thresh for head in own.config.heads] == [1.0, 1.0]
    assert not any(note.startswith("iou_thresh") for note in own.notes)
    scaled = plan_training(TrainOptions(model="yolov3-tiny", data=str(bccd_small), loss="scaled"))
    assert [head.iou_thresh for head in scaled.config.heads] == [1.0, 1.0]
