"""The dataset layouts people bring, each read as one :class:`~darkyolo.data.description.DatasetSpec`.

:func:`load_dataset` is what ``train``, ``val``, ``check``, ``anchors`` and ``convert`` call. It
takes:

* a Darknet ``.data`` file, or a folder holding one (:func:`~darkyolo.data.description.read_data_file`);
* an ultralytics ``data.yaml`` (or a folder holding one): ``path`` (the root; relative to the
  YAML's folder), ``train``/``val``/``test`` (each a folder of pictures, an image list, or a list
  of those; ``../x`` that is not there is also tried as ``x`` under the root, as ultralytics does),
  ``names`` (a list, or a mapping ``0: name``) and optionally ``nc``. Labels are YOLO ``.txt``
  files by the ``images`` -> ``labels`` rule, as in a ``.data`` set. Nothing is downloaded:
  ``download:`` is ignored.
* a LabelImg folder: pictures with their labels beside them, either Pascal VOC ``.xml`` files
  (classes: ``classes.txt`` or a ``.names`` file in the folder, else every name the XML files
  use, sorted) or YOLO ``.txt`` files (classes: ``classes.txt``, which LabelImg writes). Sub-folders
  ``train/``, ``val/`` (or ``valid/``) and ``test/`` are the splits when present; otherwise every
  picture is training data and there is no validation split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from darkyolo.data.description import (
    DatasetSpec,
    find_images,
    read_data_file,
    read_image_list,
)
from darkyolo.data.formats.yolo import read_names
from darkyolo.errors import DataError

YAML_SUFFIXES = (".yaml", ".yml")
#: a LabelImg folder's split sub-folders, by split
LABELIMG_SPLITS = {"train": ("train",), "val": ("val", "valid"), "test": ("test",)}
#: files a LabelImg folder's class names may come from, in order of preference
LABELIMG_NAMES = ("classes.txt", "*.names")


def load_dataset(path: str | Path) -> DatasetSpec:
    """The dataset at ``path`` in any layout of the module docstring."""
    path = Path(path)
    if path.is_file():
        return (
            read_ultralytics_yaml(path)
            if path.suffix.lower() in YAML_SUFFIXES
            else read_data_file(path)
        )
    if not path.is_dir():
        raise DataError(
            "no such dataset (a .data file, a data.yaml, or a folder with one or with labelled "
            "pictures)",
            str(path),
        )
    data_files = sorted(path.glob("*.data"))
    if data_files:
        return read_data_file(path)  # exactly one, or an error naming them
    yamls = sorted(p for p in path.iterdir() if p.suffix.lower() in YAML_SUFFIXES and p.is_file())
    if len(yamls) == 1 or (path / "data.yaml").is_file():
        return read_ultralytics_yaml(
            path / "data.yaml" if (path / "data.yaml").is_file() else yamls[0]
        )
    splits = _labelimg_splits(path)
    kind = _labelled_beside(splits)
    if kind is not None:
        return _labelimg_spec(path, splits, kind)
    found = ", ".join(p.name for p in yamls) or "none"
    raise DataError(
        "not a dataset folder: no .data file, no single data.yaml (YAML files: "
        f"{found}), and no pictures with .xml or .txt labels beside them",
        str(path),
    )


# ----------------------------------------------------------------------------------------------
# ultralytics data.yaml
# ----------------------------------------------------------------------------------------------


def read_ultralytics_yaml(path: str | Path) -> DatasetSpec:
    """An ultralytics ``data.yaml`` (see the module docstring)."""
    import yaml

    path = Path(path)
    file = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read the YAML file: {error}", file) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise DataError(f"not valid YAML: {reason}", file, line) from None
    if not isinstance(data, dict):
        raise DataError("expected a mapping with train, val and names keys", file)
    for key in ("train", "names"):
        if key not in data or data[key] in (None, ""):
            raise DataError(f"missing '{key}:'", file)
    names = _yaml_names(data["names"], file)
    if "nc" in data and data["nc"] != len(names):
        raise DataError(f"nc: {data['nc']} but names lists {len(names)} classes", file)
    root = _yaml_root(path, data.get("path"))
    splits = {
        split: _yaml_split(root, data.get(split), split, file) if data.get(split) else []
        for split in ("train", "val", "test")
    }
    options = {k: str(v) for k, v in data.items() if k in ("path", "train", "val", "test")}
    return DatasetSpec(
        path=path,
        names=names,
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        options=options,
    )


def _yaml_names(value: Any, file: str) -> list[str]:
    """``names:`` as a list, or as a mapping from 0..n-1 to names."""
    if isinstance(value, dict):
        try:
            keys = sorted(int(k) for k in value)
        except (TypeError, ValueError):
            raise DataError(
                "names: a mapping must have class numbers 0, 1, ... as keys", file
            ) from None
        if keys != list(range(len(keys))):
            raise DataError(
                f"names: the class numbers must be 0..{len(keys) - 1}, got {keys}", file
            )
        value = [value[k] if k in value else value[str(k)] for k in keys]
    if not isinstance(value, list) or not value:
        raise DataError("names: expected a list of class names or a mapping 0: name, ...", file)
    names = [str(name).strip() for name in value]
    for number, name in enumerate(names):
        if not name:
            raise DataError(f"names: class {number} has an empty name", file)
    return names


def _yaml_root(path: Path, value: Any) -> Path:
    """The folder the splits are relative to: ``path:`` (relative to the YAML's folder, then to
    the working directory), else the YAML's folder."""
    if value in (None, ""):
        return path.parent
    given = Path(str(value)).expanduser()
    candidates = [given] if given.is_absolute() else [path.parent / given, Path.cwd() / given]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = " or ".join(str(c) for c in dict.fromkeys(candidates))
    raise DataError(f"path: {value}: no such folder (looked for {tried})", str(path))


def _yaml_split(root: Path, value: Any, key: str, file: str) -> list[Path]:
    """The pictures of one split: a folder, an image list, or a list of those."""
    entries = value if isinstance(value, list) else [value]
    images: list[Path] = []
    for entry in entries:
        text = str(entry)
        source = root / text
        if not source.exists() and text.startswith("../") and (root / text[3:]).exists():
            source = root / text[3:]  # Roboflow's exports: ../train/images beside data.yaml
        if source.is_dir():
            images.extend(find_images(source))
        elif source.is_file():
            images.extend(read_image_list(source))
        else:
            raise DataError(f"{key}: {text}: not found (looked for {source})", file)
    return images


# ----------------------------------------------------------------------------------------------
# LabelImg folders
# ----------------------------------------------------------------------------------------------


def labelimg_kind(folder: Path) -> str | None:
    """``"xml"`` or ``"txt"`` when the pictures in ``folder`` (or its split sub-folders) have
    labels of that kind beside them, else ``None``."""
    return _labelled_beside(_labelimg_splits(folder))


def read_labelimg_folder(folder: str | Path) -> DatasetSpec:
    """A LabelImg folder (see the module docstring)."""
    folder = Path(folder)
    splits = _labelimg_splits(folder)
    kind = _labelled_beside(splits)
    if kind is None:
        raise DataError("no pictures with .xml or .txt labels beside them", str(folder))
    return _labelimg_spec(folder, splits, kind)


def _labelled_beside(splits: dict[str, list[Path]]) -> str | None:
    """The kind of label file (``xml`` or ``txt``) beside the first labelled picture, or None."""
    for images in splits.values():
        for image in images:
            for kind in ("xml", "txt"):
                if image.with_suffix(f".{kind}").is_file():
                    return kind
    return None


def _labelimg_spec(folder: Path, splits: dict[str, list[Path]], kind: str) -> DatasetSpec:
    names = _labelimg_names(folder, kind, [p for images in splits.values() for p in images])
    return DatasetSpec(
        path=folder,
        names=names,
        train=splits.get("train", []),
        val=splits.get("val", []),
        test=splits.get("test", []),
        options={"layout": f"labelimg-{kind}"},
        labels="xml" if kind == "xml" else "txt",
    )


def _labelimg_splits(folder: Path) -> dict[str, list[Path]]:
    """Split -> pictures: the ``train/``, ``val/`` (``valid/``), ``test/`` sub-folders, or every
    picture of the folder as ``train``."""
    found = {}
    for split, candidates in LABELIMG_SPLITS.items():
        for name in candidates:
            if (folder / name).is_dir():
                found[split] = find_images(folder / name)
                break
    if found:
        return found
    return {"train": find_images(folder)}


def _labelimg_names(folder: Path, kind: str, images: list[Path]) -> list[str]:
    for pattern in LABELIMG_NAMES:
        files = sorted(folder.glob(pattern))
        if len(files) == 1:
            return read_names(files[0])
    if kind == "txt":
        raise DataError(
            "YOLO .txt labels beside the pictures, but no classes.txt (LabelImg writes it) to "
            "name their classes",
            str(folder),
        )
    from darkyolo.data.formats.voc import parse_voc_xml

    names: set[str] = set()
    for image in images:
        xml = image.with_suffix(".xml")
        if xml.is_file():
            names.update(parse_voc_xml(xml).names)
    if not names:
        raise DataError("the .xml files beside the pictures hold no objects", str(folder))
    return sorted(names)
