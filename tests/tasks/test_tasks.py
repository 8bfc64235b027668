"""The tasks: which cfgs each trains, and the plan steps that are a task's own."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from darkyolo.darknet.cfg import load_cfg, parse_cfg
from darkyolo.tasks import task_for, task_named
from darkyolo.tasks.classification import ClassificationTask
from darkyolo.tasks.detection import DetectionTask
from darkyolo.training.options import TrainOptions
from darkyolo.training.planner import plan_training


def test_each_cfg_finds_its_task() -> None:
    assert task_for(load_cfg("yolov3-tiny")).name == "detect"
    assert task_for(load_cfg("yolov2")).name == "detect"
    assert task_for(load_cfg("darknet19")).name == "classify"
    assert isinstance(task_named("classify"), ClassificationTask)
    with pytest.raises(ValueError, match="unknown task 'segment'"):
        task_named("segment")


def test_refine_fits_anchors_only_for_new_heads(bccd_small: Path) -> None:
    """The anchor fit is a plan step: a new plan whose cfg holds the k-means anchors, or the
    same plan where the run keeps the cfg's (``--anchors cfg``, heads from pretrained weights).
    A start from the COCO weights trains new heads, so it fits anchors too. The first note is
    the training split's shape, whatever the anchors do."""
    from darkyolo.data.dataset import load_split
    from darkyolo.data.shape import data_shape

    task = DetectionTask()
    plan = plan_training(TrainOptions(model="yolov3-tiny", data=str(bccd_small), img_size=320))
    train, _ = load_split(plan.data, "train")
    shape_note = f"training set: {data_shape(train, 3).describe()}"
    assert shape_note.startswith(f"training set: {len(train)} pictures, ")
    fitted = task.refine(plan, train)
    assert fitted.notes[0] == shape_note and fitted.notes[-1].startswith("anchors: ")
    assert fitted.anchors != plan.anchors
    assert parse_cfg(fitted.cfg_text).heads[0].anchors == tuple(map(tuple, fitted.anchors[0]))
    kept = replace(plan, options=replace(plan.options, anchors="cfg"))
    assert task.refine(kept, train) == replace(kept, notes=(shape_note, *kept.notes))
    assert plan.pretrained is not None and not plan.pretrained_heads  # the COCO start
    pretrained = replace(plan, pretrained="some.weights", pretrained_heads=True)
    assert task.refine(pretrained, train) == replace(pretrained, notes=(shape_note, *plan.notes))


def test_the_plan_writes_the_training_size_into_the_cfg(bccd_small: Path) -> None:
    plan = plan_training(TrainOptions(model="yolov3-tiny", data=str(bccd_small), img_size=320))
    assert (plan.config.net.width, plan.config.net.height) == (320, 320)
    assert plan.config_given.net.width == 416  # the cfg as written


def test_refine_scales_the_class_count_rate_by_the_boxes_a_picture(bccd_small: Path) -> None:
    """The aligned mode's rate 0.04 / (4 + classes) holds from 4 boxes a picture (BCCD has about
    14) and falls in proportion below: a quarter at one box a picture, the note says why. ``--lr``
    and the darknet mode's cfg rate are left alone."""
    from darkyolo.data.dataset import load_split

    task = DetectionTask()
    options = TrainOptions(model="yolov3-tiny-newcoords", data=str(bccd_small), img_size=320)
    plan = plan_training(options)
    assert plan.options.loss == "aligned" and plan.lr == pytest.approx(0.005714)
    train, _ = load_split(plan.data, "train")
    assert task.refine(plan, train).lr == plan.lr
    one_each = [replace(r, boxes=r.boxes[:1], labels=r.labels[:1]) for r in train]
    scaled = task.refine(plan, one_each)
    assert scaled.lr == pytest.approx(0.005714 / 4, abs=1e-6)
    assert (
        f"learning rate {scaled.lr:g}: 0.04 / (4 + 3 classes) x 0.25 (1.0 boxes a picture, the "
        "full rate from 4)"
    ) in scaled.notes
    assert not any(n.startswith("learning rate 0.005714") for n in scaled.notes)
    given = plan_training(replace(options, lr=0.01))
    assert task.refine(given, one_each).lr == 0.01
    darknet = plan_training(replace(options, loss="darknet"))
    assert task.refine(darknet, one_each).lr == darknet.lr
