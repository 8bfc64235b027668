"""The command line's own behaviour: a fast start, and one usage line for an unknown option."""

from __future__ import annotations

import subprocess
import sys

import pytest

from darkyolo.cli import main

HEAVY = ("torch", "cv2", "matplotlib", "torchvision", "onnxruntime", "fastapi")


def test_building_every_command_and_its_help_loads_nothing_heavy() -> None:
    """``darkyolo --help`` and ``darkyolo CMD --help`` build the whole parser: no torch, OpenCV
    or matplotlib may load for it (each command imports what it uses when it runs)."""
    code = (
        "import sys, contextlib, io\n"
        "from darkyolo.cli import main\n"
        "for argv in (['--help'], ['detect', '--help'], ['train', '--help'], ['classify', 'train', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["detect", "x.jpg", "--conff", "0.3"], "darkyolo detect: error: unrecognized option --conff (did you mean --conf?)"),
        (["train", "--epohcs=3"], "darkyolo train: error: unrecognized option --epohcs (did you mean --epochs?)"),
        (["classify", "predict", "x.jpg", "--weights", "w.pt", "--topp", "3"], "darkyolo classify predict: error: unrecognized option --topp (did you mean --top?)"),
        (["info", "--zzzzzz"], "darkyolo info: error: unrecognized option --zzzzzz (see"),
    ],
)  # fmt: skip
def test_an_unknown_option_names_the_command_and_the_closest_option(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--epochs", "0"],
        ["train", "--epochs", "-1"],
        ["train", "--max-batches", "-5"],
        ["train", "--batch", "0"],
        ["train", "--batch", "-4"],
        ["train", "--subdivisions", "0"],
        ["train", "--img-size", "0"],
        ["train", "--lr", "-1"],
        ["train", "--workers", "-1"],
        ["val", "--data", "x.data", "--conf", "2"],
        ["detect", "x.jpg", "--img-size", "100"],
        ["serve", "--port", "70000"],
        ["export", "--opset", "0"],
    ],
)
def test_a_bad_number_is_one_line_before_anything_runs(
    argv: list[str], tmp_path, monkeypatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    flag = argv[-2]
    assert err.count("\n") == 1 and f"argument {flag}: expected" in err and argv[-1] in err
    assert "unexpected" not in err
    assert list(tmp_path.iterdir()) == []  # no run folder
