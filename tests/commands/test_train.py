"""``darkyolo train`` from the command line: what an interrupted run says."""

from __future__ import annotations

from pathlib import Path

import pytest

from darkyolo.cli import main
from darkyolo.training.trainer import Trainer


def test_ctrl_c_names_last_pt_and_the_resume_command(
    tmp_path: Path, bccd_small: Path, tiny_cfg_file: Path, monkeypatch, capsys
) -> None:
    fit = Trainer.fit

    def one_epoch_then_ctrl_c(self: Trainer, stop_after: int | None = None):
        fit(self, stop_after=1)
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", one_epoch_then_ctrl_c)
    argv = ["train", "--model", str(tiny_cfg_file), "--data", str(bccd_small), "--epochs", "3",
            "--batch", "4", "--img-size", "64", "--workers", "0", "--no-progress", "--no-plots",
            "--project", str(tmp_path / "runs")]  # fmt: skip
    assert main(argv) == 130
    last = tmp_path / "runs" / "exp" / "weights" / "last.pt"
    assert last.is_file()
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        f"darkyolo train: interrupted; the last finished epoch is in {last}; go on with: "
        f"darkyolo train --resume {last}"
    )


def test_ctrl_c_before_an_epoch_ends_says_nothing_was_saved(
    tmp_path: Path, bccd_small: Path, tiny_cfg_file: Path, monkeypatch, capsys
) -> None:
    def interrupted(self: Trainer, stop_after: int | None = None):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", interrupted)
    argv = ["train", "--model", str(tiny_cfg_file), "--data", str(bccd_small), "--project", str(tmp_path)]  # fmt: skip
    assert main(argv) == 130
    assert "interrupted; no epoch had finished, so nothing was saved" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--anchors", "--mosaic"])
def test_detection_options_are_in_train_help(flag: str, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert flag in capsys.readouterr().out


def test_an_ultralytics_data_yaml_passes_check_and_trains(
    tmp_path: Path, tiny_cfg_file: Path, capsys
) -> None:
    from tiny import ultralytics_set

    data = ultralytics_set(tmp_path / "set")
    assert main(["check", str(data)]) == 0
    assert "0 errors" in capsys.readouterr().out
    argv = ["train", "--model", str(tiny_cfg_file), "--data", str(data), "--epochs", "1",
            "--batch", "2", "--img-size", "64", "--workers", "0", "--no-progress", "--no-plots",
            "--project", str(tmp_path / "runs")]  # fmt: skip
    assert main(argv) == 0
    assert (tmp_path / "runs" / "exp" / "weights" / "last.pt").is_file()
    assert main(["val", "--weights", str(tmp_path / "runs" / "exp" / "weights" / "last.pt"),
                 "--data", str(data), "--no-plots", "--no-progress",
                 "--project", str(tmp_path / "val")]) == 0  # fmt: skip


def test_a_labelimg_folder_trains(tmp_path: Path, tiny_cfg_file: Path) -> None:
    from tiny import picture, voc_xml

    folder = tmp_path / "labelled"
    for split, stems in (("train", "abcd"), ("val", "ef")):
        for stem in stems:
            picture(folder / split / f"{stem}.jpg")
            voc_xml(folder / split / f"{stem}.xml", [("cat", (4, 4, 30, 40))])
    argv = ["train", "--model", str(tiny_cfg_file), "--data", str(folder), "--epochs", "1",
            "--batch", "2", "--img-size", "64", "--workers", "0", "--no-progress", "--no-plots",
            "--project", str(tmp_path / "runs")]  # fmt: skip
    assert main(argv) == 0
    assert (tmp_path / "runs" / "exp" / "results.csv").is_file()


def test_the_run_folder_is_complete(tmp_path: Path, bccd_small: Path, tiny_cfg_file: Path) -> None:
    """The run's ``model.cfg`` (at the size it trained at) and ``model.names`` beside it: its
    ``best.weights`` are usable with ``--model model.cfg`` alone, and name their classes."""
    from darkyolo.models.zoo import resolve_model

    argv = ["train", "--model", str(tiny_cfg_file), "--data", str(bccd_small), "--epochs", "1",
            "--batch", "4", "--img-size", "96", "--workers", "0", "--no-progress", "--no-plots",
            "--project", str(tmp_path / "runs")]  # fmt: skip
    assert main(argv) == 0
    run = tmp_path / "runs" / "exp"
    source = resolve_model(run / "model.cfg", run / "weights" / "best.weights")
    assert source.names == ["Platelets", "RBC", "WBC"]
    assert (source.config.net.width, source.config.net.height) == (96, 96)


def test_train_refuses_a_classifier_cfg(tmp_path: Path, bccd_small: Path, capsys) -> None:
    argv = ["train", "--model", "darknet19", "--data", str(bccd_small), "--project", str(tmp_path)]
    assert main(argv) == 2
    assert "is a classifier: train it with darkyolo classify train" in capsys.readouterr().err
