"""The training dataset over real BCCD pictures: samples, determinism, cache, collate, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from darkyolo.data.dataset import (
    DetectionDataset,
    LetterboxDataset,
    collate_detection,
    collate_letterbox,
    load_split,
)
from darkyolo.data.multiscale import MultiScaleBatchSampler
from darkyolo.data.records import ImageRecord
from darkyolo.data.transforms import AugmentOptions
from darkyolo.errors import DataError

BCCD = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "bccd"


@pytest.fixture(scope="module")
def records() -> list[ImageRecord]:
    """Six BCCD pictures with their VOC boxes (read straight from the XML)."""
    if not BCCD.is_dir():
        pytest.skip(f"BCCD not found at {BCCD}")
    from darkyolo.data.formats.voc import parse_voc_xml, voc_to_record

    names = {"Platelets": 0, "RBC": 1, "WBC": 2}
    out = []
    for xml in sorted((BCCD / "Annotations").glob("*.xml"))[:6]:
        voc = parse_voc_xml(xml, False)
        out.append(voc_to_record(voc, BCCD / "JPEGImages" / f"{xml.stem}.jpg", names, False, None))
    return out


def test_samples_are_uint8_with_normalised_targets(records):
    dataset = DetectionDataset(records, 96, AugmentOptions(), seed=1, num_classes=3)
    image, targets, index = dataset[(2, 128, 0)]
    assert image.shape == (3, 128, 128) and image.dtype == torch.uint8
    assert index == 2 and targets.ndim == 2 and targets.shape[1] == 5
    assert len(targets) > 0
    assert set(targets[:, 0].tolist()) <= {0.0, 1.0, 2.0}
    assert targets[:, 1:].min() >= 0 and targets[:, 1:].max() <= 1
    plain, _, _ = dataset[3]  # a bare index: the base size, epoch 0
    assert plain.shape == (3, 96, 96)


def test_same_key_same_sample_other_epoch_other_sample(records):
    dataset = DetectionDataset(records, 96, AugmentOptions(), seed=7)
    a, ta, _ = dataset[(1, 96, 3)]
    b, tb, _ = dataset[(1, 96, 3)]
    c, _, _ = dataset[(1, 96, 4)]
    assert torch.equal(a, b) and torch.equal(ta, tb)
    assert not torch.equal(a, c)


def test_mosaic_only_before_mosaic_epochs(records):
    config = AugmentOptions(mosaic=1.0)
    mixed = DetectionDataset(records, 96, config, seed=7, mosaic_epochs=2)
    plain = DetectionDataset(records, 96, AugmentOptions(), seed=7)
    early, _, _ = mixed[(1, 96, 1)]
    late, late_targets, _ = mixed[(1, 96, 2)]
    reference, reference_targets, _ = plain[(1, 96, 2)]
    assert not torch.equal(early, plain[(1, 96, 1)][0])
    assert torch.equal(late, reference) and torch.equal(late_targets, reference_targets)
    again, _, _ = DetectionDataset(records, 96, config, seed=7)[(1, 96, 1)]
    assert torch.equal(early, again)  # the same key draws the same mosaic


def test_no_augmentation_is_the_letterbox(records):
    dataset = DetectionDataset(records, 64, None)
    image, targets, _ = dataset[0]
    record = records[0]
    # 640x480 into 64x64: 64x48 picture with 8-pixel grey bars above and below
    assert (image[:, :8] == 127).all() and (image[:, -8:] == 127).all()
    cx = (record.boxes[:, 0] + record.boxes[:, 2]) / 2 / record.width
    np.testing.assert_allclose(targets[:, 1].numpy(), cx, atol=1e-5)


def test_cache_gives_the_same_samples(records):
    plain = DetectionDataset(records, 64, AugmentOptions(), seed=3)
    cached = DetectionDataset(records, 64, AugmentOptions(), seed=3, cache=True)
    assert cached.source.cached_bytes == sum(r.width * r.height * 3 for r in records)
    for key in [(0, 64, 0), (5, 96, 2)]:
        for x, y in zip(plain[key][:2], cached[key][:2]):
            assert torch.equal(x, y)
    shrunk = DetectionDataset(records, 64, AugmentOptions(), seed=3, cache=True, cache_side=320)
    image, targets, _ = shrunk[(0, 64, 0)]
    reference = plain[(0, 64, 0)]
    assert torch.allclose(targets, reference[1], atol=1e-4)  # boxes rescaled with the picture
    assert (image.float() - reference[0].float()).abs().mean() < 4


def test_collate_numbers_the_images(records):
    dataset = DetectionDataset(records, 64, None)
    images, targets, indices = collate_detection([dataset[i] for i in (4, 0, 2)])
    assert images.shape == (3, 3, 64, 64) and indices == [4, 0, 2]
    counts = [len(dataset[i][1]) for i in (4, 0, 2)]
    assert targets.shape == (sum(counts), 6)
    assert targets[:, 0].tolist() == [0.0] * counts[0] + [1.0] * counts[1] + [2.0] * counts[2]


def test_workers_do_not_change_the_batches(records):
    dataset = DetectionDataset(records, 64, AugmentOptions(), seed=2)

    def batches(workers: int) -> list:
        sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=2)
        batch_sampler = MultiScaleBatchSampler(sampler, 2, [64, 96], interval=1, seed=2)
        batch_sampler.set_epoch(1)
        loader = DataLoader(dataset, batch_sampler=batch_sampler, num_workers=workers, collate_fn=collate_detection)  # fmt: skip
        return list(loader)

    for (xa, ta, ia), (xb, tb, ib) in zip(batches(0), batches(2)):
        assert ia == ib and torch.equal(xa, xb) and torch.equal(ta, tb)


def test_a_damaged_picture_raises_naming_the_file(records, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    record = ImageRecord(bad, 640, 480)
    dataset = DetectionDataset([record], 64, AugmentOptions())
    with pytest.raises(DataError, match=r"broken\.jpg"):
        dataset[0]
    with pytest.raises(DataError, match=r"broken\.jpg"):
        LetterboxDataset([record], 64)[0]


def test_bad_class_is_refused_at_build_time(records):
    record = ImageRecord(records[0].image, 640, 480, [[0, 0, 10, 10]], [5])
    with pytest.raises(DataError, match="class 5"):
        DetectionDataset([record], 64, num_classes=3)


def test_load_split_counts_and_skips_missing_pictures(tmp_path, dataset_factory):
    data = dataset_factory(
        tmp_path / "ds", {"a": "0 0.5 0.5 0.5 0.4\n", "b": "1 0.2 0.2 0.1 0.1\n"}
    )
    (tmp_path / "ds" / "images" / "train" / "b.jpg").unlink()
    records, report = load_split(data, "train")
    assert [r.image.name for r in records] == ["a.jpg"]
    assert len(report.skipped_images) == 1 and "b.jpg" in str(report.skipped_images[0])
    assert any("left out: 1" in line for line in report.lines())
    with pytest.raises(DataError, match=r"b\.jpg"):
        load_split(data, "train", strict=True)


def test_letterbox_dataset(records):
    dataset = LetterboxDataset(records[:2], 64)
    images, indices = collate_letterbox([dataset[0], dataset[1]])
    assert images.shape == (2, 3, 64, 64) and images.dtype == torch.float32
    assert indices == [0, 1]
    assert torch.all(images[:, :, :8] == 0.5)  # Darknet's grey bars


def test_the_cache_is_sized_from_the_records_and_the_free_memory(monkeypatch) -> None:
    """A cache holds each picture shrunk to the largest training side: its size is known before
    any picture is decoded, and ``cache=None`` caches only when that fits a quarter of the free
    memory, for every process."""
    from darkyolo.data import dataset

    def record(width: int, height: int) -> ImageRecord:
        return ImageRecord(Path("x.jpg"), width, height, np.zeros((0, 4)), np.zeros(0, np.int64))

    records = [record(640, 480), record(200, 100)]
    assert dataset.cache_bytes(records, 320) == 320 * 240 * 3 + 200 * 100 * 3
    monkeypatch.setattr(dataset, "free_memory", lambda: 4 * (320 * 240 * 3 + 200 * 100 * 3))
    assert dataset.cache_fits(records, 320)
    assert not dataset.cache_fits(records, 320, processes=2)
    monkeypatch.setattr(dataset, "free_memory", lambda: None)
    assert not dataset.cache_fits(records, 320)
