from darkyolo.data.check import check_dataset


def _broken(tmp_path, dataset_factory):
    data = dataset_factory(
        tmp_path / "ds",
        {
            "good": "0 0.5 0.5 0.5 0.5\n1 0.2 0.2 0.1 0.1\n",
            "bad": (
                "0 0.5 0.5 0.2\n"  # 1: unparsable
                "2 0.5 0.5 0.2 0.2\n"  # 2: class out of range
                "0 320 240 64 48\n"  # 3: pixels
                "1 0.95 0.5 0.2 0.2\n"  # 4: outside the image
                "0 0.5 0.5 0.1 0.1\n"  # 5: fine
                "0 0.5 0.5 0.1 0.1\n"  # 6: duplicate of 5
                "1 0.5 0.5 0 0.1\n"  # 7: zero width
            ),
            "empty": "",
            "nolabel": None,
        },
        {"v": "1 0.5 0.5 0.2 0.2\n"},
    )
    root = data.parent
    (root / "images" / "train" / "good.jpg").rename(root / "images" / "train" / "moved.jpg")
    (root / "labels" / "train" / "stray.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (root / "labels" / "train" / "moved.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    return data


def test_check_finds_each_problem_with_file_and_line(tmp_path, dataset_factory):
    data = _broken(tmp_path, dataset_factory)
    report = check_dataset(data)
    root = data.parent
    bad = str(root / "labels" / "train" / "bad.txt")
    found = {(p.severity, p.kind, p.file, p.line) for p in report.problems}
    assert ("error", "unparsable", bad, 1) in found
    assert ("error", "class-range", bad, 2) in found
    assert ("error", "not-normalised", bad, 3) in found
    assert ("error", "out-of-range", bad, 4) in found
    assert ("warning", "duplicate", bad, 6) in found
    assert ("error", "zero-size", bad, 7) in found
    assert ("error", "missing-image", str(root / "images" / "train" / "good.jpg"), None) in found
    assert ("warning", "empty-image", str(root / "images" / "train" / "empty.jpg"), None) in found
    assert (
        "warning",
        "missing-label",
        str(root / "images" / "train" / "nolabel.jpg"),
        None,
    ) in found
    assert ("warning", "orphan-label", str(root / "labels" / "train" / "stray.txt"), None) in found
    assert len(report.errors) == 6
    assert {p.kind for p in report.warnings} == {
        "duplicate",
        "empty-image",
        "missing-label",
        "orphan-label",
    }
    # the good lines of bad.txt still count: lines 5 and 6
    train = report.splits["train"]
    assert (train.images, train.boxes, train.class_counts) == (3, 2, [2, 0])
    assert report.splits["val"].class_counts == [0, 1]
    text = "\n".join(report.lines())
    assert f"{bad}:1: error: expected 'class cx cy w h' (5 numbers), got 4 fields" in text
    assert f"{bad}:2: error: class 2 is outside 0..1" in text
    assert "6 errors" in text


def test_clean_dataset_has_no_errors_and_statistics(tmp_path, yolo_dataset):
    report = check_dataset(yolo_dataset)
    assert report.errors == []
    assert [p.kind for p in report.warnings] == ["empty-image"]
    train = report.splits["train"]
    assert (train.images, train.boxes, train.empty) == (2, 2, 1)
    assert sum(train.size_counts) == 2 and sum(train.coco_sizes) == 2
    # sqrt(20*12)/sqrt(40*30)=0.447 and sqrt(4*6)/sqrt(1200)=0.141
    assert train.size_counts == [0, 0, 0, 0, 1, 1, 0]


def test_train_val_overlap_is_a_warning(tmp_path, yolo_dataset):
    root = yolo_dataset.parent
    (root / "val.txt").write_text("images/train/a.jpg\n")
    report = check_dataset(yolo_dataset)
    assert [p.kind for p in report.problems if p.kind == "split-overlap"] == ["split-overlap"]
