"""The optional parts of darkyolo and what each needs installed (``pip install 'darkyolo[X]'``).

A command that needs an extra calls :func:`require` before it does anything else, so a missing
package is one line that says what to install, not a ``ModuleNotFoundError`` halfway through.
"""

from __future__ import annotations

from importlib.util import find_spec

from darkyolo.errors import DarkyoloError

#: extra (as named in pyproject.toml) -> the modules it brings
EXTRAS: dict[str, tuple[str, ...]] = {
    "serve": ("fastapi", "uvicorn", "prometheus_client", "multipart"),
    "export": ("onnx", "onnxruntime"),
    "openvino": ("openvino", "nncf"),
}


def missing_modules(modules: tuple[str, ...]) -> list[str]:
    """The modules of ``modules`` that cannot be imported here."""
    return [name for name in modules if find_spec(name) is None]


def require(extra: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """Raise one :class:`DarkyoloError` naming the packages and the extra when ``what`` (``"darkyolo
    serve"``) cannot run for lack of ``modules`` (default: all of the extra's)."""
    missing = missing_modules(EXTRAS[extra] if modules is None else modules)
    if missing:
        raise DarkyoloError(
            f"{what} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
            f"not installed: pip install 'darkyolo[{extra}]'"
        )
