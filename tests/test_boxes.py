"""Box conversions and IoU forms (checked against torchvision and hand values)."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import box_iou

from darkyolo.boxes import box_iou_aligned, box_iou_batched, normalised_cxcywh_to_xyxy, wh_iou


def random_xyxy(generator: torch.Generator, *shape: int) -> torch.Tensor:
    xy = torch.rand(*shape, 2, generator=generator) * 50
    wh = torch.rand(*shape, 2, generator=generator) * 30 + 0.5
    return torch.cat([xy, xy + wh], dim=-1)


def test_normalized_cxcywh_to_xyxy_pixels() -> None:
    boxes = torch.tensor([[0.5, 0.25, 0.5, 0.1]])
    expected = [100.0, 40.0, 300.0, 60.0]
    assert normalised_cxcywh_to_xyxy(boxes, (200, 400))[0].tolist() == pytest.approx(expected)


def test_aligned_iou_by_hand() -> None:
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [1.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    assert box_iou_aligned(a, b).tolist() == pytest.approx([1 / 7, 0.0, 1.0])


def test_batched_iou_equals_torchvision_per_image() -> None:
    generator = torch.Generator().manual_seed(0)
    a, b = random_xyxy(generator, 3, 7), random_xyxy(generator, 3, 5)
    result = box_iou_batched(a, b)
    assert result.shape == (3, 7, 5)
    for image in range(3):
        torch.testing.assert_close(result[image], box_iou(a[image], b[image]))


def test_wh_iou_shared_centre() -> None:
    assert wh_iou(torch.tensor([2.0, 1.0]), torch.tensor([1.0, 2.0])).item() == pytest.approx(1 / 3)
    pairs = wh_iou(torch.tensor([[4.0, 4.0]]).unsqueeze(1), torch.tensor([[2.0, 2.0], [4.0, 4.0]]))
    assert pairs.flatten().tolist() == pytest.approx([0.25, 1.0])


def test_wh_iou_equals_box_iou_of_centred_boxes() -> None:
    generator = torch.Generator().manual_seed(1)
    wh1 = torch.rand(6, 2, generator=generator) + 0.1
    wh2 = torch.rand(6, 2, generator=generator) + 0.1
    centred = lambda wh: torch.cat([-wh / 2, wh / 2], dim=-1)  # noqa: E731
    torch.testing.assert_close(wh_iou(wh1, wh2), box_iou_aligned(centred(wh1), centred(wh2)))
