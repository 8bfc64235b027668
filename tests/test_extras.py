"""Optional parts say what to install, in one line, before anything runs."""

from __future__ import annotations

import pytest

import darkyolo.extras
from darkyolo.cli import main
from darkyolo.extras import EXTRAS, require


@pytest.fixture
def without(monkeypatch):
    """``without("uvicorn")``: find_spec answers None for those modules."""

    def hide(*names: str) -> None:
        real = darkyolo.extras.find_spec
        monkeypatch.setattr(
            darkyolo.extras, "find_spec", lambda name: None if name in names else real(name)
        )

    return hide


def test_the_extras_match_pyproject() -> None:
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    for extra, modules in EXTRAS.items():
        packages = " ".join(declared[extra]).replace("-", "_").lower()
        for module in modules:
            assert module in packages, (extra, module)


def test_require_names_the_missing_packages_and_the_extra(without) -> None:
    require("serve", "darkyolo serve")  # installed for the tests
    without("uvicorn", "fastapi")
    with pytest.raises(darkyolo.extras.DarkyoloError) as error:
        require("serve", "darkyolo serve")
    assert str(error.value) == (
        "darkyolo serve needs fastapi, uvicorn, which are not installed: "
        "pip install 'darkyolo[serve]'"
    )


@pytest.mark.parametrize(
    ("argv", "hidden", "expected"),
    [
        (["serve"], "uvicorn", "darkyolo serve needs uvicorn"),
        (["export", "--random-weights", "--model", "yolov3-tiny"], "onnxruntime", "pip install 'darkyolo[export]'"),
        (["detect", "x.jpg", "--backend", "onnxruntime"], "onnxruntime", "needs onnxruntime"),
    ],
)  # fmt: skip
def test_a_command_without_its_extra_is_one_line(
    argv, hidden, expected, without, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.jpg").write_bytes(b"")  # a source that exists (read only after the check)
    without(hidden)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0] and "unexpected" not in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jpg"]
