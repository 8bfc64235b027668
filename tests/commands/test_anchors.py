from pathlib import Path

import pytest

from darkyolo.cli import main
from darkyolo.darknet.cfg import load_cfg
from darkyolo.data.convert import convert

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="module")
def bccd(tmp_path_factory):
    if not (DATA / "bccd").is_dir():
        pytest.skip("shared data not present")
    out = tmp_path_factory.mktemp("bccd")
    convert(DATA / "bccd", out, "voc", "yolo")
    return out


def _value(out: str, prefix: str) -> float:
    line = next(line for line in out.splitlines() if line.startswith(prefix))
    return float(line.rsplit(":", 1)[1])


def test_anchors_grid_beats_yolov2_voc(bccd, capsys):
    assert main(["anchors", str(bccd), "-k", "5", "--img-size", "416", "--units", "grid"]) == 0
    out = capsys.readouterr().out
    assert "units: grid cells of stride 32 at 416x416" in out
    line = next(line for line in out.splitlines() if line.startswith("anchors="))
    assert len(line.removeprefix("anchors=").split(", ")) == 5
    fitted = _value(out, "mean IoU, k-means anchors")
    default = _value(out, "mean IoU, yolov2-voc.cfg anchors")
    assert fitted > default + 0.2


def test_anchors_class_table_suggests_iou_thresh(bccd, capsys):
    assert main(["anchors", str(bccd), "-k", "6", "--cfg", "yolov3-tiny"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[-5:-1]}
    # a0 is the platelets' anchor, a5 the WBCs'; the RBC-sized ones in between
    assert rows["Platelets"][0].endswith("*") and rows["WBC"][5].endswith("*")
    assert all(cell.endswith("*") for cell in rows["RBC"][1:5])
    line = out.splitlines()[-1]
    assert line.startswith("[yolo] iou_thresh: between")
    suggested = float(line.split("iou_thresh=")[1].split(";")[0])
    assert 0.4 < suggested < 0.65


def test_anchors_plot_and_write_cfg(bccd, tmp_path, capsys):
    plot, cfg = tmp_path / "elbow.png", tmp_path / "tiny.cfg"
    args = [
        "anchors",
        str(bccd),
        "--cfg",
        "yolov3-tiny",
        "--plot",
        str(plot),
        "--write-cfg",
        str(cfg),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "units: pixels of a 416x416 input" in out and "k=6" in out
    assert "mean IoU, yolov3-tiny.cfg anchors" in out
    assert plot.stat().st_size > 1000
    config = load_cfg(cfg)
    assert all(h.classes == 3 and h.num == 6 for h in config.heads)


def test_write_cfg_needs_cfg(bccd, tmp_path, capsys):
    assert main(["anchors", str(bccd), "--write-cfg", str(tmp_path / "x.cfg")]) == 2
    assert "--write-cfg needs --cfg" in capsys.readouterr().err


@pytest.mark.parametrize("option", [["-k", "0"], ["--img-size", "0"], ["--restarts", "-1"]])
def test_non_positive_numbers_are_refused(
    option: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from darkyolo.cli import main

    with pytest.raises(SystemExit) as caught:
        main(["anchors", "unused.data", *option])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert (
        f"argument {option[0]}: expected" in err and "at least 1" in err
    ) or "multiple of 32" in err
