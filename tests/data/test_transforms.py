"""Training transforms: boxes move exactly with the pixels; colour changes; filtering."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from darkyolo.data.letterbox import letterbox_params
from darkyolo.data.transforms import (
    AugmentOptions,
    augment,
    clip_and_filter,
    hsv_distort,
    jitter_params,
    letterbox_affine,
    letterbox_eval,
    letterbox_uint8,
    mosaic,
    move_boxes,
    rand_scale,
    warp,
)


def picture_with_box(box: tuple[int, int, int, int], hw=(240, 320)) -> np.ndarray:
    """Black picture with a white filled rectangle covering pixels [x1, x2) x [y1, y2)."""
    image = np.zeros((*hw, 3), dtype=np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = 255
    return image


def bright_extent(image: np.ndarray) -> tuple[float, float, float, float]:
    """xyxy (pixel edges) of the white region: columns and rows more than half covered."""
    mask = np.clip(image[..., 0].astype(np.float64) - 127, 0, None) / 128  # grey fill and black: 0
    cols, rows = mask.sum(axis=0), mask.sum(axis=1)
    xs, ys = np.nonzero(cols > 0.5 * cols.max())[0], np.nonzero(rows > 0.5 * rows.max())[0]
    return xs[0], ys[0], xs[-1] + 1, ys[-1] + 1


@pytest.mark.parametrize("geometry", ["jitter", "square", "letterbox"])
@pytest.mark.parametrize("seed", range(6))
def test_boxes_follow_the_pixels(geometry, seed):
    box = (100, 60, 180, 150)
    image = picture_with_box(box)
    config = AugmentOptions(geometry=geometry, jitter=0.3, scale=(0.7, 1.3), hue=0, saturation=1, exposure=1)  # fmt: skip
    rng = np.random.default_rng(seed)
    out, boxes, labels = augment(image, np.array([box], np.float32), np.array([1]), (96, 128), config, rng)  # fmt: skip
    assert out.shape == (96, 128, 3) and out.dtype == np.uint8
    if len(boxes) == 0:  # pushed off the canvas by the zoom: nothing bright may remain in view
        assert (out[..., 0] > 200).sum() < 0.25 * (box[2] - box[0]) * (box[3] - box[1])
        return
    assert labels.tolist() == [1]
    seen = bright_extent(out)
    np.testing.assert_allclose(boxes[0], seen, atol=1.01)


def test_flip_mirrors_pixels_and_boxes():
    box = (20, 30, 60, 90)
    image = picture_with_box(box, (120, 160))
    affine = letterbox_affine((120, 160), (120, 160))
    flipped = warp(image, (120, 160), affine, flip=True)
    np.testing.assert_array_equal(flipped, image[:, ::-1])
    moved = move_boxes(np.array([box], np.float32), (120, 160), affine, flip=True)
    np.testing.assert_allclose(moved[0], [100, 30, 140, 90])


def test_letterbox_affine_matches_the_letterbox_module():
    box = letterbox_params((480, 640), (416, 416))
    sx, sy, dx, dy = letterbox_affine((480, 640), (416, 416))
    assert (sx, sy, dx, dy) == (box.scale_x, box.scale_y, box.pad_x, box.pad_y)
    corners = np.array([[10.0, 20.0, 300.0, 400.0]], np.float32)
    np.testing.assert_allclose(move_boxes(corners, (416, 416), (sx, sy, dx, dy)), box.to_network(corners), rtol=1e-6)  # fmt: skip


def test_letterbox_uint8_and_eval_agree():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
    grey, boxes, _ = letterbox_uint8(image, np.array([[8, 8, 40, 40]], np.float32), np.array([0]), (64, 64))  # fmt: skip
    exact, box = letterbox_eval(image, (64, 64))
    assert exact.dtype == np.float32 and exact.shape == (64, 64, 3)
    difference = np.abs(grey.astype(np.float32) / 255 - exact)
    assert difference.max() < 6 / 255 and difference.mean() < 1 / 255  # bilinear in both
    np.testing.assert_allclose(boxes, box.to_network(np.array([[8, 8, 40, 40]], np.float32)), rtol=1e-6)  # fmt: skip


def test_jitter_without_jitter_keeps_the_aspect():
    rng = np.random.default_rng(1)
    for _ in range(5):
        sx, sy, dx, dy = jitter_params((480, 640), (416, 416), 0.0, (1.0, 1.0), rng)
        assert sx == pytest.approx(sy)
        assert 640 * sx == pytest.approx(416)  # the long side spans the input
        assert dx == pytest.approx(0) and 0 <= dy <= 416 - 480 * sy


def test_clip_and_filter():
    boxes = np.array(
        [[-31, 10, 10, 50], [-5, 10, 60, 50], [10, 10, 11, 40], [20, 20, 40, 40], [-30, 0, 10, 9]],
        np.float32,
    )
    labels = np.arange(5)
    kept, kept_labels = clip_and_filter(boxes, labels, (64, 64), min_size=2, min_visible=0.25)
    # 10/41 visible is dropped, 10/40 kept; a 1-pixel-wide sliver is dropped
    assert kept_labels.tolist() == [1, 3, 4]
    np.testing.assert_allclose(kept[0], [0, 10, 60, 50])


def test_hsv_identity_hue_wrap_and_saturation():
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0] = 200  # red
    assert hsv_distort(image, 0.0, 1.0, 1.0) is image
    green = hsv_distort(image.copy(), 1 / 3, 1.0, 1.0)
    assert green[0, 0, 1] > 150 and green[0, 0, 0] < 30
    back = hsv_distort(image.copy(), -2 / 3, 1.0, 1.0)  # the same hue the other way round
    np.testing.assert_array_equal(back, green)
    grey = hsv_distort(image.copy(), 0.0, 0.0, 1.0)
    assert np.ptp(grey[0, 0].astype(int)) == 0
    darker = hsv_distort(image.copy(), 0.0, 1.0, 0.5)
    assert darker[0, 0, 0] == 100


def test_rand_scale_range():
    rng = np.random.default_rng(0)
    values = np.array([rand_scale(rng, 1.5) for _ in range(2000)])
    assert values.min() >= 1 / 1.5 - 1e-9 and values.max() <= 1.5 + 1e-9
    assert 0.4 < (values >= 1).mean() < 0.6


def test_augment_is_deterministic_for_a_seed():
    rng_image = np.random.default_rng(5).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 50, 40]], np.float32)
    a = augment(
        rng_image, boxes, np.array([0]), (64, 64), AugmentOptions(), np.random.default_rng(3)
    )
    b = augment(
        rng_image, boxes, np.array([0]), (64, 64), AugmentOptions(), np.random.default_rng(3)
    )
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_warp_matches_cv2_resize_for_a_plain_scale():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    affine = (100 / 70, 80 / 50, 0.0, 0.0)
    ours = warp(image, (80, 100), affine).astype(int)
    reference = cv2.resize(image, (100, 80), interpolation=cv2.INTER_LINEAR).astype(int)
    difference = np.abs(ours - reference)[2:-2, 2:-2]
    assert difference.max() <= 6 and difference.mean() < 1.5  # same pixel-centre convention
    shifted = cv2.warpAffine(image, np.array([[100 / 70, 0, 0], [0, 80 / 50, 0.0]]), (100, 80))
    assert np.abs(shifted.astype(int) - reference)[2:-2, 2:-2].mean() > 5  # the naive one is not


@pytest.mark.parametrize("seed", range(8))
def test_mosaic_boxes_land_on_their_own_pictures_pixels(seed):
    """Four flat pictures (grey levels 40, 90, 160, 220), each with one box covering all of it and
    labelled with its number: every box of the mosaic covers pixels of its own picture only."""
    levels = (40, 90, 160, 220)
    pictures = []
    for number, level in enumerate(levels):
        h, w = (120 + 20 * number, 160 - 10 * number)
        pictures.append((np.full((h, w, 3), level, np.uint8), np.array([[0, 0, w, h]], np.float32), np.array([number])))  # fmt: skip
    config = AugmentOptions(scale=(0.6, 1.4), hue=0, saturation=1, exposure=1, mosaic=1.0, min_visible=0)  # fmt: skip
    out, boxes, labels = mosaic(pictures, (128, 128), config, np.random.default_rng(seed))
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    assert labels.tolist() == [0, 1, 2, 3]  # every tile shows part of its picture
    assert boxes.min() >= 0 and boxes.max() <= 128
    for (x1, y1, x2, y2), label in zip(boxes, labels, strict=True):
        inside = out[int(np.ceil(y1)) + 1 : int(y2) - 1, int(np.ceil(x1)) + 1 : int(x2) - 1, 0]
        assert inside.size and np.all(np.abs(inside.astype(int) - levels[label]) <= 1)


def test_mosaic_keeps_every_box_when_pictures_fit_their_tiles():
    """Tiny pictures (zoom 0.1 of the input) always fit their tile whole: no box is lost."""
    image = picture_with_box((10, 10, 30, 30), (64, 64))
    box = np.array([[10, 10, 30, 30]], np.float32)
    config = AugmentOptions(scale=(0.1, 0.1), hue=0, saturation=1, exposure=1, mosaic=1.0)
    pictures = [(image, box, np.array([n])) for n in range(4)]
    _, boxes, labels = mosaic(pictures, (256, 256), config, np.random.default_rng(0))
    assert labels.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(boxes[:, 2] - boxes[:, 0], 20 * 0.1 * 256 / 64, rtol=1e-5)


def test_mosaic_needs_four_pictures_and_a_valid_probability():
    with pytest.raises(ValueError, match="4 pictures"):
        mosaic([], (64, 64), AugmentOptions(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="mosaic probability"):
        AugmentOptions(mosaic=1.5)
