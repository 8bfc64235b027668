import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from darkyolo.cli import main
from darkyolo.models.io import load_model, save_darknet_weights

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "samples"
SAMPLE_NAMES = ["dog", "eagle", "giraffe", "horses", "kite", "person", "scream"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """yolov3-tiny with seeded random kernels and batch-norm statistics, as a .weights file."""
    model = load_model("yolov3-tiny").randomize_(seed=0)
    path = tmp_path_factory.mktemp("weights") / "tiny.weights"
    save_darknet_weights(model, path)
    return path


def detect(tmp_path, sources, weights, *extra):
    argv = ["detect", *map(str, sources), "--model", "yolov3-tiny", "--weights", str(weights)]
    argv += ["--img-size", "96", "--conf", "0.2", "--project", str(tmp_path / "runs"), *extra]
    return main(argv)


def test_detect_over_the_sample_folder(tmp_path, weights, capsys):
    if not SAMPLES.is_dir():
        pytest.skip("shared samples not available")
    code = detect(tmp_path, [SAMPLES], weights, "--save-txt", "--save-json", "--batch", "3", "-v")
    assert code == 0
    run = tmp_path / "runs" / "exp"
    pictures = sorted(p.stem for p in run.glob("*.jpg"))
    assert pictures == SAMPLE_NAMES  # one annotated picture per input
    for name in SAMPLE_NAMES:
        drawn = cv2.imread(str(run / f"{name}.jpg"))
        assert drawn.shape == cv2.imread(str(SAMPLES / f"{name}.jpg")).shape
    labels = sorted(p.stem for p in (run / "labels").glob("*.txt"))
    assert labels == SAMPLE_NAMES
    rows = [line.split() for line in (run / "labels" / "dog.txt").read_text().splitlines()]
    assert rows and all(len(r) == 6 for r in rows)
    values = np.array([[float(v) for v in r[1:]] for r in rows])
    assert np.all((values >= 0) & (values <= 1))
    out = capsys.readouterr().out
    assert "7 pictures" in out and "dog.jpg (768x576)" in out

    # the COCO results JSON loads with pycocotools
    results = json.loads((run / "predictions.json").read_text())
    assert results and {"image_id", "category_id", "bbox", "score"} <= set(results[0])
    gt = COCO()
    gt.dataset = {
        "images": [{"id": n, "width": 1, "height": 1} for n in SAMPLE_NAMES],
        "categories": [{"id": i, "name": str(i)} for i in range(1, 91)],
        "annotations": [],
    }
    gt.createIndex()
    loaded = gt.loadRes(str(run / "predictions.json"))
    assert len(loaded.getAnnIds()) == len(results)
    assert {a["category_id"] for a in results} <= set(range(1, 91))


def test_new_run_folder_each_time_and_unreadable_files_counted(tmp_path, weights, capsys):
    good = tmp_path / "in" / "ok.png"
    good.parent.mkdir()
    cv2.imwrite(str(good), np.full((50, 70, 3), 128, np.uint8))
    bad = tmp_path / "in" / "bad.jpg"
    bad.write_bytes(b"garbage")
    assert detect(tmp_path, [good], weights) == 0
    assert detect(tmp_path, [tmp_path / "in", tmp_path / "missing.jpg"], weights) == 0
    assert (tmp_path / "runs" / "exp" / "ok.png").is_file()
    assert (tmp_path / "runs" / "exp2" / "ok.png").is_file()
    assert not (tmp_path / "runs" / "exp2" / "bad.jpg").exists()
    captured = capsys.readouterr()
    assert "2 sources could not be read" in captured.err
    assert "bad.jpg" in captured.err and "missing.jpg" in captured.err
    assert detect(tmp_path, [good], weights, "--name", "exp", "--exist-ok") == 0
    assert not (tmp_path / "runs" / "exp3").exists()


def test_nothing_readable_is_an_error(tmp_path, weights, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"garbage")
    assert detect(tmp_path, [bad], weights) == 2
    assert "nothing could be read" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--max-det", "--vid-stride", "--batch"])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_counts_below_one_are_refused_by_name(tmp_path, weights, capsys, flag, value):
    with pytest.raises(SystemExit) as exit:
        detect(tmp_path, [SAMPLES], weights, flag, value)
    assert exit.value.code == 2
    expected = f"darkyolo detect: error: argument {flag}: expected a whole number of at least 1, got '{value}'"  # fmt: skip
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # refused before any output


def test_video_source(tmp_path, weights):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (64, 48))
    for i in range(4):
        writer.write(np.full((48, 64, 3), 50 * i, np.uint8))
    writer.release()
    assert detect(tmp_path, [video], weights, "--save-txt", "--vid-stride", "2") == 0
    run = tmp_path / "runs" / "exp"
    assert (run / "clip.mp4").stat().st_size > 0
    assert sorted(p.name for p in (run / "labels").iterdir()) == ["clip_0.txt", "clip_2.txt"]
    capture = cv2.VideoCapture(str(run / "clip.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 2
    capture.release()


def test_export_then_detect_with_onnxruntime(tmp_path, weights, capsys):
    pytest.importorskip("onnxruntime")
    onnx_path = tmp_path / "tiny.onnx"
    argv = ["export", "--model", "yolov3-tiny", "--weights", str(weights), "--img-size", "96"]
    assert main([*argv, "--output", str(onnx_path)]) == 0
    assert "max difference" in capsys.readouterr().out
    picture = tmp_path / "p.png"
    cv2.imwrite(str(picture), np.full((40, 60, 3), 200, np.uint8))
    args = ["--backend", "onnxruntime", "--save-txt"]
    assert detect(tmp_path, [picture], onnx_path, *args) == 0
    assert "onnxruntime" in capsys.readouterr().out
    assert (tmp_path / "runs" / "exp" / "labels" / "p.txt").is_file()
    assert (
        main(
            [
                "export",
                "--model",
                "yolov3-tiny",
                "--weights",
                str(weights),
                "--format",
                "weights",
                "--output",
                str(tmp_path / "copy.weights"),
            ]
        )
        == 0
    )
    assert (tmp_path / "copy.weights").read_bytes() == weights.read_bytes()


def test_no_model_options_means_the_bundled_coco_model(tmp_path, capsys):
    """The README's main job: the shipped sample pictures, boxed and named, pictures and JSON."""
    from importlib import resources

    samples = Path(str(resources.files("darkyolo") / "assets" / "samples"))
    argv = ["detect", str(samples), "--save-json", "--verbose", "--project", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "model: yolov3-tiny-coco (80 classes)" in out
    dog_line = next(line for line in out.splitlines() if line.startswith("dog.jpg"))
    assert all(name in dog_line for name in ("dog", "bicycle", "truck")), dog_line
    horses_line = next(line for line in out.splitlines() if line.startswith("horses.jpg"))
    assert "horse" in horses_line, horses_line
    run = tmp_path / "exp"
    pictures = sorted(p.name for p in samples.glob("*.jpg"))
    assert sorted(p.name for p in run.glob("*.jpg")) == pictures
    results = json.loads((run / "predictions.json").read_text())
    assert {r["category_id"] for r in results} >= {18, 2, 8}  # COCO ids of dog, bicycle, truck


def test_image_ids_come_from_a_coco_json_by_file_name(tmp_path, weights, capsys):
    picture = tmp_path / "pic.jpg"
    cv2.imwrite(str(picture), np.full((64, 80, 3), 90, np.uint8))
    other = tmp_path / "other.jpg"
    cv2.imwrite(str(other), np.full((64, 80, 3), 90, np.uint8))
    annotations = tmp_path / "instances.json"
    annotations.write_text(
        json.dumps(
            {
                "images": [{"id": 4242, "file_name": "pic.jpg", "width": 80, "height": 64}],
                "annotations": [],
                "categories": [{"id": 1, "name": "thing"}],
            }
        )
    )
    status = detect(
        tmp_path, [picture, other], weights, "--conf", "0.001", "--save-json",
        "--image-ids", str(annotations), "--nosave",
    )  # fmt: skip
    assert status == 0
    assert "1 pictures are not in" in capsys.readouterr().err
    results = json.loads((tmp_path / "runs" / "exp" / "predictions.json").read_text())
    assert {r["image_id"] for r in results} == {4242, "other"}


def test_a_missing_source_is_found_before_the_model_loads(tmp_path, capsys):
    # the model does not exist either: the sources are checked first, and no folder is made
    argv = ["detect", str(tmp_path / "no_such.jpg"), "--model", str(tmp_path / "no.cfg")]
    assert main([*argv, "--project", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing to detect on" in err and "no_such.jpg" in err
    assert not (tmp_path / "runs").exists()


def test_nosave_and_unreadable_runs_make_no_folder(tmp_path, weights, capsys):
    good = tmp_path / "ok.png"
    cv2.imwrite(str(good), np.full((50, 70, 3), 128, np.uint8))
    assert detect(tmp_path, [good], weights, "--nosave") == 0
    assert "results in" not in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"garbage")
    assert detect(tmp_path, [bad], weights, "--save-json") == 2
    assert not (tmp_path / "runs").exists()
    assert detect(tmp_path, [good], weights, "--nosave", "--save-txt") == 0
    assert (tmp_path / "runs" / "exp" / "labels" / "ok.txt").is_file()
