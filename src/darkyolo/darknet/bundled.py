"""The cfgs and class-name lists shipped in the package (``darkyolo/config``), and the one way a
cfg given by name or path is found and read (:func:`read_cfg_text`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from darkyolo.darknet.parser import parse_cfg
from darkyolo.darknet.specs import NetworkConfig
from darkyolo.errors import ConfigError

_BUNDLED_PACKAGE = "darkyolo.config"


def bundled_cfgs(task: str | None = None) -> list[str]:
    """Names of the cfgs shipped in the package (``yolov3``, ``darknet19``, ...); ``task``
    ``detect`` or ``classify`` keeps the detectors or the classifiers only."""
    folder = resources.files(_BUNDLED_PACKAGE)
    names = sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".cfg"))
    if task is None:
        return names
    return [name for name in names if load_cfg(name).is_classifier == (task == "classify")]


def resolve_cfg_path(source: str | Path) -> Path:
    """A bundled name (``yolov3``) or a path to a ``.cfg`` file -> the file's path."""
    path = Path(source)
    if path.is_file():
        return path
    name = str(source)
    if "/" not in name and "\\" not in name:
        bundled = resources.files(_BUNDLED_PACKAGE) / f"{name.removesuffix('.cfg')}.cfg"
        if bundled.is_file():
            return Path(str(bundled))
    names = ", ".join(bundled_cfgs())
    raise ConfigError(
        f"no such cfg file or bundled model name; bundled names are: {names}", str(source)
    )


def read_cfg_text(source: str | Path) -> tuple[str, Path]:
    """The text of a cfg given as a bundled name or a path, and its path; a byte-order mark
    (Windows editors write one) is dropped. Every reader of cfg files goes through here."""
    path = resolve_cfg_path(source)
    try:
        return path.read_text(encoding="utf-8-sig"), path
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"not a text file ({error.reason} at byte {error.start})", str(path)
        ) from None
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror}", str(path)) from None


def load_cfg(source: str | Path) -> NetworkConfig:
    """Load and parse a cfg given as a bundled name or a path."""
    text, path = read_cfg_text(source)
    return parse_cfg(text, str(path))


def bundled_names_file(name: str) -> Path:
    """Path of a bundled class-names list (``coco`` or ``voc``)."""
    path = resources.files(_BUNDLED_PACKAGE) / f"{name.removesuffix('.names')}.names"
    if not path.is_file():
        raise ConfigError(f"no bundled names list {name!r}; bundled: coco, voc", name)
    return Path(str(path))
