"""Which engine runs a network: the backends there are, what counts as an exported file, and
``auto``'s rule. Torch-free, so the command line can offer the choices without loading PyTorch
(the engines themselves are in :mod:`darkyolo.inference.backends`)."""

from __future__ import annotations

from pathlib import Path

from darkyolo.errors import OptionError
from darkyolo.extras import missing_modules

BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
#: suffixes of exported files: ONNX, and OpenVINO's IR (``.xml`` beside its ``.bin``)
EXPORT_SUFFIXES = (".onnx", ".xml")


def is_exported(path: str | Path | None) -> bool:
    """Whether ``path`` names an exported network (``.onnx`` or an OpenVINO ``.xml``) rather than a
    cfg, weights or checkpoint."""
    return path is not None and str(path).lower().endswith(EXPORT_SUFFIXES)


def choose_backend(
    requested: str,
    *,
    exported: str | Path | None = None,
    device: str = "cpu",
    torch_only: str | None = None,
) -> tuple[str, str]:
    """The backend to run and why, for messages: ``("openvino", "auto: OpenVINO is installed")``.

    ``requested``: one of :data:`BACKENDS`. ``exported``: the exported file given, if any (an
    ``.xml`` is OpenVINO's). ``torch_only``: the PyTorch-only option given (``--compile``), if any.
    ``auto`` picks OpenVINO, then ONNX Runtime, then PyTorch, by what is installed; PyTorch for a
    GPU device or a PyTorch-only option.
    """
    if requested not in BACKENDS:
        raise OptionError(f"--backend must be one of {', '.join(BACKENDS)}, got {requested!r}")
    openvino_ok = not missing_modules(("openvino",))
    onnxruntime_ok = not missing_modules(("onnxruntime",))
    is_ir = exported is not None and str(exported).lower().endswith(".xml")
    if torch_only and (requested not in ("auto", "torch") or exported is not None):
        raise OptionError(f"{torch_only} is an option of the torch backend")
    if requested != "auto":
        if exported is not None and requested == "torch":
            raise OptionError(f"{exported} is an exported network: use --backend onnxruntime or openvino")  # fmt: skip
        if is_ir and requested != "openvino":
            raise OptionError(f"{exported} is an OpenVINO IR: use --backend openvino")
        return requested, "asked for"
    if exported is not None:
        if is_ir or openvino_ok:
            return "openvino", "auto: the fastest engine installed for an exported file"
        return "onnxruntime", "auto: OpenVINO is not installed: pip install 'darkyolo[openvino]'"
    if str(device) not in ("cpu", "auto") or (device == "auto" and _cuda_available()):
        return "torch", f"auto: device {device}"
    if torch_only:
        return "torch", f"auto: {torch_only} is an option of PyTorch"
    if missing_modules(("onnx",)):  # a cfg and weights reach the other engines as ONNX
        return "torch", "auto: onnx is not installed to hand the network to another engine"
    if openvino_ok:
        return "openvino", "auto: OpenVINO is installed; --backend torch for PyTorch"
    if onnxruntime_ok:
        return "onnxruntime", "auto: ONNX Runtime is installed, OpenVINO is not"
    return "torch", "auto: neither OpenVINO nor ONNX Runtime is installed"


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
