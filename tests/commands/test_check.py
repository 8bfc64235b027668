from pathlib import Path

from PIL import Image

from darkyolo.cli import main


def _dataset(root: Path, label: str) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    Image.new("RGB", (16, 16)).save(root / "images" / "a.jpg")
    (root / "labels" / "a.txt").write_text(label)
    (root / "x.names").write_text("a\nb\n")
    (root / "x.data").write_text("classes=2\nnames=x.names\ntrain=images\n")
    return root / "x.data"


def test_check_clean_dataset_exits_zero(tmp_path, capsys):
    data = _dataset(tmp_path, "0 0.5 0.5 0.5 0.5\n1 0.25 0.25 0.5 0.5\n")
    assert main(["check", str(data)]) == 0
    out = capsys.readouterr().out
    assert "train: 1 images, 2 boxes, 0 without boxes" in out
    assert "0 errors, 0 warnings" in out


def test_check_bad_label_exits_one_with_file_line(tmp_path, capsys):
    data = _dataset(tmp_path, "0 0.5 0.5 0.5 0.5\n5 0.5 0.5 0.1 0.1\n")
    assert main(["check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'labels' / 'a.txt'}:2: error: class 5 is outside 0..1" in out
    assert "1 errors, 0 warnings" in out
    assert data.exists()


def test_check_strict_counts_warnings(tmp_path, capsys):
    data = _dataset(tmp_path, "0 0.5 0.5 0.5 0.5\n0 0.5 0.5 0.5 0.5\n")
    assert main(["check", str(data)]) == 0
    assert main(["check", str(data), "--strict"]) == 1
    assert "same box as line 1" in capsys.readouterr().out


def test_check_unreadable_data_file_is_exit_two(tmp_path, capsys):
    (tmp_path / "x.data").write_text("names=none.names\ntrain=images\n")
    assert main(["check", str(tmp_path / "x.data")]) == 2
    assert "names=none.names: not found" in capsys.readouterr().err


def test_a_list_used_for_train_and_valid_reports_each_problem_once_with_its_splits(
    tmp_path, capsys
):
    data = _dataset(tmp_path, "0 0.5 0.5 0.5 0.5\n5 0.5 0.5 0.1 0.1\n")
    (tmp_path / "all.txt").write_text("images/a.jpg\n")
    data.write_text("classes=2\nnames=x.names\ntrain=all.txt\nvalid=all.txt\n")
    assert main(["check", str(data)]) == 1
    out = capsys.readouterr().out
    line = f"{tmp_path / 'labels' / 'a.txt'}:2: error: class 5 is outside 0..1 (train and val)"
    assert out.count("class 5 is outside") == 1 and line in out
    assert "1 errors, 1 warnings" in out  # the error, and the picture listed in both splits
