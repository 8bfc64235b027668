"""The command line under bad input: one line saying what is wrong, a non-zero exit, no traceback.

A few cases run ``python -m darkyolo`` in real subprocesses (started together, ~3 s each for the
imports); the rest call :func:`darkyolo.cli.main` in-process, which is the same code path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import cfg, conv, head, maxpools, net, run_cli, start_cli, two_class_dataset

from darkyolo.darknet.cfg import load_cfg
from darkyolo.models.darknet import Darknet
from darkyolo.models.io import save_darknet_weights


def cfg_text(classes: int) -> str:
    """64x64 pictures, one 4-filter conv and four max-pools (stride 32), one head."""
    return cfg(net(64, batch=2), conv(4, stride=2), maxpools(4), head(classes, "4,5, 8,9, 16,20"))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A 2-class dataset of four 64x64 pictures, cfgs for 2 and 5 classes, their weights."""
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    labels = "0 0.5 0.5 0.3 0.3\n1 0.3 0.3 0.2 0.2\n"
    pictures = [(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), labels) for _ in range(4)]
    data = two_class_dataset(root / "ds", pictures)
    out = {"root": root, "data": data, "image": root / "ds" / "images" / "train" / "0.png"}
    for classes in (2, 5):
        cfg_file = root / f"c{classes}.cfg"
        cfg_file.write_text(cfg_text(classes))
        model = Darknet(load_cfg(cfg_file))
        save_darknet_weights(model, root / f"c{classes}.weights")
        torch.save({"model": model.state_dict()}, root / f"c{classes}.pt")
        out[f"cfg{classes}"] = cfg_file
        out[f"weights{classes}"] = root / f"c{classes}.weights"
        out[f"pt{classes}"] = root / f"c{classes}.pt"
    (root / "bad.cfg").write_text("[net]\nwidth=64\n\n[convolutional]\nfilters=abc\n")
    out["bad_cfg"] = root / "bad.cfg"
    (root / "empty.weights").write_bytes(b"")
    out["empty_weights"] = root / "empty.weights"
    return out


def check_one_line_error(status: int, stderr: str, *expected: str) -> str:
    """Non-zero exit; stderr ends with exactly one ``error:`` line holding ``expected``; no
    traceback. Warnings before it are allowed."""
    assert status != 0, stderr
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    for text in expected:
        assert text in errors[0], f"{text!r} not in {errors[0]!r}"
    return errors[0]


# ----------------------------------------------------------------------------------------------
# Real subprocesses
# ----------------------------------------------------------------------------------------------


def _subprocess_cases(f: dict[str, Path]) -> dict[str, tuple[list[str], tuple[str, ...]]]:
    image = str(f["image"])
    return {
        "missing cfg": (
            ["detect", image, "--model", "no/such.cfg"],
            ("no/such.cfg", "no such cfg file or bundled model name", "bundled names are"),
        ),
        "weights for another cfg": (
            ["detect", image, "--model", str(f["cfg2"]), "--weights", str(f["weights5"])],
            (str(f["weights5"]), "Is this the .weights file for this cfg"),
        ),
    }


def test_cli_errors_in_subprocesses(files):
    """Three processes started together: two bad inputs, and ``--debug`` as the control (the
    way to get the traceback)."""
    cases = _subprocess_cases(files)
    procs = {name: start_cli(argv, files["root"], text=True) for name, (argv, _) in cases.items()}
    debug = start_cli(["--debug", "info", str(files["bad_cfg"])], files["root"], text=True)
    for name, proc in procs.items():
        _, stderr = proc.communicate(timeout=300)
        check_one_line_error(proc.returncode, stderr, *cases[name][1])
    _, stderr = debug.communicate(timeout=300)
    assert debug.returncode != 0
    assert "Traceback" in stderr and "ConfigError" in stderr


# ----------------------------------------------------------------------------------------------
# In-process: the same main()
# ----------------------------------------------------------------------------------------------

#: name -> (the command line, split at spaces and then filled in with the ``files``; the texts
#: its one error line must hold)
IN_PROCESS = {
    # wrong paths
    "missing picture": (
        "detect {root}/nope.jpg --model {cfg2} --random-weights",
        "nothing to detect on",
        "nope.jpg (no such file or folder)",
    ),
    "missing weights": (
        "detect {image} --model {cfg2} --weights {root}/nope.weights",
        "nope.weights: no such weights file",
    ),
    "folder as weights": ("detect {image} --model {cfg2} --weights {root}", "no such weights file"),
    "cfg as weights": ("detect {image} --model {cfg2} --weights {cfg2}", "c2.cfg"),
    "empty weights": (
        "detect {image} --model {cfg2} --weights {empty}",
        "empty.weights",
        "too short",
    ),
    "missing names": (
        "detect {image} --model {cfg2} --random-weights --names {root}/nope.names",
        "nope.names",
    ),
    "missing data for anchors": ("anchors {root}/nope.data", "no such dataset"),
    "missing data for check": ("check {root}/nope.data", "no such dataset"),
    "missing convert source": ("convert {root}/nope {root}/out", "nope"),
    "bad cfg": ("info {bad_cfg}", "bad.cfg:5: key 'filters'", "expected an integer"),
    "missing dataset": (
        "val --model {cfg2} --weights {weights2} --data {root}/no.data",
        "no.data",
        "no such dataset",
    ),
    "cfg classes vs data": (
        "val --model {cfg5} --weights {weights5} --data {data}",
        "the model has 5 classes, the dataset 2",
    ),
    # wrong option values
    "bad option value": (
        "detect {image} --conf abc",
        "argument --conf: expected a number from 0 to 1, got 'abc'",
        "darkyolo detect --help",
    ),
    "conf out of range": (
        "detect {image} --model {cfg2} --conf 5",
        "argument --conf: expected a number from 0 to 1, got '5'",
    ),
    "zero batch": ("detect {image} --model {cfg2} --batch 0", "batch"),
    "bad choice": ("check {data} --split sideways", "invalid choice: 'sideways'", "--help"),
    "not a number": (
        "anchors {data} -k five",
        "-k: expected a whole number of at least 1, got 'five'",
    ),
    "negative k": ("anchors {data} -k -2", "-k: expected a whole number of at least 1, got '-2'"),
    "unknown command": ("frobnicate", "invalid choice: 'frobnicate'"),
    "unknown option": (
        "info {cfg2} --colour",
        "darkyolo info: error: unrecognized option --colour",
    ),
    "img size not a multiple of the stride": (
        "export --model {cfg2} --random-weights --img-size 31 --output {root}/x.onnx",
        "argument --img-size: expected a positive multiple of 32",
    ),
    "architecture without weights": (
        "detect {image} --model yolov3",
        "yolov3 is an architecture without trained weights",
        "yolov3-tiny-coco",
    ),
    "darknet weights without a cfg": ("detect {image} --weights {weights2}", "holds no cfg"),
    "unknown device": ("detect {image} --model {cfg2} --random-weights --device banana", "banana"),
    # weights for another cfg
    "checkpoint for another cfg": (
        "detect {image} --model {cfg2} --weights {pt5}",
        "c5.pt",
        "checkpoint does not fit this cfg",
    ),
    "weights for another cfg (export)": (
        "export --model {cfg2} --weights {weights5} --format weights --output {root}/x.weights",
        "c5.weights",
        "Is this the .weights file for this cfg",
    ),
}


@pytest.mark.parametrize("name", sorted(IN_PROCESS))
def test_cli_error_in_process(files, name):
    command, *expected = IN_PROCESS[name]
    values = {
        "root": files["root"],
        "image": files["image"],
        "data": files["data"],
        "cfg2": files["cfg2"],
        "cfg5": files["cfg5"],
        "weights2": files["weights2"],
        "weights5": files["weights5"],
        "pt5": files["pt5"],
        "bad_cfg": files["bad_cfg"],
        "empty": files["empty_weights"],
    }
    status, stderr, _ = run_cli([a.format(**values) for a in command.split()], files["root"])
    check_one_line_error(status, stderr, *expected)


def test_train_adapts_the_cfg_classes_to_the_data_and_says_so(files):
    """``train`` with a 5-class cfg on 2-class data rewrites the heads (and says so) rather than
    failing; with a weights file for another cfg it fails in one line."""
    pytest.importorskip("darkyolo.commands.train")
    runs = str(files["root"] / "runs")
    status, _, stdout = run_cli(
        ["train", "--model", str(files["cfg5"]), "--data", str(files["data"]), "--epochs", "1",
         "--no-progress", "--project", runs],
        files["root"],
    )  # fmt: skip
    assert status == 0 and "heads adapted from 5 to 2 classes" in stdout
    status, stderr, _ = run_cli(
        ["train", "--model", str(files["cfg2"]), "--data", str(files["data"]), "--weights",
         str(files["weights5"]), "--epochs", "1", "--project", runs],
        files["root"],
    )  # fmt: skip
    check_one_line_error(status, stderr, "c5.weights")
    status, stderr, _ = run_cli(
        ["train", "--model", str(files["cfg2"]), "--data", str(files["root"] / "no.data"),
         "--epochs", "1", "--project", runs],
        files["root"],
    )  # fmt: skip
    check_one_line_error(status, stderr, "no.data", "no such dataset")


def test_a_bad_option_value_is_an_option_error_in_one_line(files):
    """``--jitter 1.2`` used to print "unexpected ValueError"; option errors are OptionError."""
    from darkyolo.data.transforms import AugmentOptions
    from darkyolo.errors import DarkyoloError, OptionError

    with pytest.raises(OptionError) as error:
        AugmentOptions(jitter=1.2)
    assert isinstance(error.value, DarkyoloError) and isinstance(error.value, ValueError)
    status, stderr, _ = run_cli(
        ["train", "--model", str(files["cfg2"]), "--data", str(files["data"]), "--epochs", "1",
         "--jitter", "1.2", "--project", str(files["root"] / "runs")],
        files["root"],
    )  # fmt: skip
    check_one_line_error(
        status,
        stderr,
        "argument --jitter: expected a number from 0 up to (not including) 1, got '1.2'",
    )
    assert "unexpected" not in stderr
