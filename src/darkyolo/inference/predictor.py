"""Batched inference: pictures, folders, globs, image lists and videos in, boxes in original pixels out.

The way through: read (a worker thread reads and letterboxes ahead of the network) -> batch
``[B, H, W, 3]`` float 0..1 -> backend -> decoded rows ``[B, N, 5+C]`` -> :func:`postprocess` ->
boxes mapped back through each picture's letterbox.

Backends (:mod:`darkyolo.inference.backends`): ``torch``, ``onnxruntime`` and ``openvino`` (an
exported file, or the model exported to ONNX in memory when given a cfg and weights); ``auto``, the
default, picks OpenVINO, then ONNX Runtime, then PyTorch by what is installed.

>>> detector = Detector()                        # the COCO default, yolov3-tiny-coco  # doctest: +SKIP
>>> detector = Detector("bccd")                  # a bundled trained model             # doctest: +SKIP
>>> detector = Detector("yolov3", "yolov3.weights")                # doctest: +SKIP
>>> result = detector.predict("dog.jpg")[0]                        # doctest: +SKIP
>>> result.boxes, result.scores, result.labels, result.label_names  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from darkyolo.darknet.cfg import bundled_names_file
from darkyolo.data.formats.yolo import read_names
from darkyolo.data.images import (
    MAX_PIXELS,
    Source,
    SourceList,
    collect_sources,
    decode,
    iter_video_frames,
    read_bytes,
)
from darkyolo.data.letterbox import Letterbox, letterbox
from darkyolo.errors import DarkyoloError, DataError, OptionError
from darkyolo.inference.backends import (
    OnnxBackend,
    OpenVinoBackend,
    TorchBackend,
    exported_backend,
)
from darkyolo.inference.engines import choose_backend, is_exported
from darkyolo.models.darknet import Darknet
from darkyolo.models.zoo import resolve_model
from darkyolo.postprocess import Detections, postprocess, scale_to_original

# --------------------------------------------------------------------------- class names


def class_names(num_classes: int, names: str | Path | Sequence[str] | None = None) -> list[str]:
    """Names for ``num_classes`` classes: from ``names`` (a file or a list) if given, else the
    bundled COCO (80) or VOC (20) list by count, else ``"class N"``."""
    if names is not None:
        given = read_names(names) if isinstance(names, (str, Path)) else [str(n) for n in names]
        if len(given) != num_classes:
            where = str(names) if isinstance(names, (str, Path)) else None
            raise DataError(f"{len(given)} class names for a model of {num_classes} classes", where)
        return given
    for bundled in ("coco", "voc"):
        listed = read_names(bundled_names_file(bundled))
        if len(listed) == num_classes:
            return listed
    return [f"class {k}" for k in range(num_classes)]


# --------------------------------------------------------------------------- results


@dataclass
class Prediction:
    """One picture's detections, in its original pixels.

    ``boxes``: float32 ``[K, 4]`` xyxy; ``scores``: float32 ``[K]``; ``labels``: int64 ``[K]``,
    highest score first. ``source`` is the file; ``frame`` the index for a video frame.
    ``image`` (RGB uint8) is kept only when the caller asked for it (to draw on). ``repaired``
    says why the file needed repair (a truncated JPEG or PNG, decoded as far as it goes).
    """

    source: str
    image_hw: tuple[int, int]
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    names: Sequence[str]
    frame: int | None = None
    image: np.ndarray | None = None
    repaired: str | None = None

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def label_names(self) -> list[str]:
        return [_name(self.names, int(k)) for k in self.labels]

    def counts(self) -> str:
        """``"2 dog, 1 person"`` (most frequent first), or ``"no detections"``."""
        if not len(self):
            return "no detections"
        found, counts = np.unique(self.labels, return_counts=True)
        order = np.argsort(-counts, kind="stable")
        return ", ".join(f"{counts[i]} {_name(self.names, int(found[i]))}" for i in order)

    @property
    def name(self) -> str:
        """``dog.jpg``, or ``clip.mp4#12`` for a video frame."""
        base = Path(self.source).name
        return base if self.frame is None else f"{base}#{self.frame}"


def _name(names: Sequence[str], label: int) -> str:
    return names[label] if 0 <= label < len(names) else f"class {label}"


@dataclass(frozen=True)
class ReadFailure:
    """A source that could not be read; the run goes on."""

    source: str
    message: str


@dataclass
class Timings:
    """Seconds spent (summed over pictures): reading + letterbox, network, post-processing."""

    images: int = 0
    read: float = 0.0
    inference: float = 0.0
    postprocess: float = 0.0

    def per_image_ms(self) -> dict[str, float]:
        n = max(1, self.images)
        return {
            "read": 1000 * self.read / n,
            "inference": 1000 * self.inference / n,
            "postprocess": 1000 * self.postprocess / n,
        }


# --------------------------------------------------------------------------- the detector


@dataclass
class _Item:
    source: str
    frame: int | None
    image: np.ndarray
    network_image: np.ndarray
    box: Letterbox
    repaired: str | None = None


def _prepare(
    source: str, frame: int | None, image: np.ndarray | None, hw: tuple[int, int], max_pixels: int
) -> _Item:
    repaired = None
    if image is None:
        decoded = decode(read_bytes(source), source, max_pixels)
        image, repaired = decoded.pixels, decoded.repaired
    net_image, box = letterbox(image, hw)
    return _Item(source, frame, image, net_image, box, repaired)


class Detector:
    """Detect objects in pictures with a Darknet model.

    Args:
        model: a trained model's name (``"yolov3-tiny-coco"``, the default; ``"bccd"``), a cfg
            (bundled name such as ``"yolov3"``, or a ``.cfg`` path) with ``weights``, a built
            :class:`Darknet`, or an ``.onnx`` or OpenVINO ``.xml`` file from ``darkyolo export``. See
            :func:`darkyolo.models.zoo.resolve_model` for how ``model`` and ``weights`` combine.
        weights: ``.weights`` / checkpoint for the cfg (a checkpoint alone brings its own cfg and
            names), or an exported file.
        random_weights: build a cfg with untrained random weights (only when asked for).
        backend: ``"auto"`` (OpenVINO, else ONNX Runtime, else PyTorch, by what is installed; see
            :func:`~darkyolo.inference.backends.choose_backend`), ``"torch"``, ``"onnxruntime"``
            or ``"openvino"`` (a cfg and weights are exported to ONNX in memory for the last two).
        img_size: network input ``(h, w)`` or one side; default the cfg's. Multiple of the stride.
        conf, iou, max_det, classes, multi_label: see :func:`darkyolo.postprocess.postprocess`.
        names: a ``.names`` file or list; default by class count (COCO, VOC, else ``class N``).
        device: torch device (the torch backend).
        threads: CPU threads for the network (default: the library's own choice).
        compile: ``torch.compile`` the network (worth it only for long runs: each new shape compiles).
        bf16: run the torch backend's convolutions in bfloat16 (see :class:`TorchBackend`).
    """

    def __init__(
        self,
        model: str | Path | Darknet | None = None,
        weights: str | Path | None = None,
        *,
        random_weights: bool = False,
        backend: str = "auto",
        img_size: int | tuple[int, int] | None = None,
        conf: float = 0.25,
        iou: float = 0.45,
        max_det: int = 300,
        classes: Sequence[int] | None = None,
        multi_label: bool = False,
        names: str | Path | Sequence[str] | None = None,
        device: str | torch.device = "cpu",
        threads: int | None = None,
        compile: bool = False,
        bf16: bool = False,
        batch_size: int = 8,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        if not 0.0 <= conf <= 1.0 or not 0.0 <= iou <= 1.0:
            raise OptionError(f"conf and iou must lie in 0..1 (got conf={conf}, iou={iou})")
        if batch_size < 1:
            raise OptionError(f"batch size must be at least 1, got {batch_size}")
        if max_det < 1:
            raise OptionError(f"max_det must be at least 1, got {max_det}")
        if threads:
            torch.set_num_threads(int(threads))
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self.classes = None if classes is None else [int(c) for c in classes]
        self.multi_label = multi_label
        self.batch_size = batch_size
        self.max_pixels = max_pixels
        self.timings = Timings()

        exported = next(
            (Path(p) for p in (model, weights) if isinstance(p, (str, Path)) and is_exported(p)),
            None,
        )
        torch_only = "--compile" if compile else "--bf16" if bf16 else None
        chosen, why = choose_backend(
            backend, exported=exported, device=str(device), torch_only=torch_only
        )
        embedded_names: list[str] | None = None
        #: lines worth telling the user about the model chosen (e.g. a checkpoint's own cfg used)
        self.notes: tuple[str, ...] = ()
        #: the files the model was read from (cfg and weights, or the exported file)
        self.source_files: tuple[Path, ...] = ()
        # throughput streams pay off when several pictures go to the network at once
        throughput = batch_size > 1
        if exported is not None:
            self.backend: TorchBackend | OnnxBackend | OpenVinoBackend = exported_backend(
                chosen, exported, threads, throughput=throughput
            )
            embedded_names = self.backend.names
            self.model_name = str(exported)
            self.source_files = (exported,)
        else:
            if isinstance(model, Darknet):
                net, self.model_name = model, str(model.config.source)
            else:
                source = resolve_model(model, weights, random_weights=random_weights)
                net, embedded_names = source.build(), source.names
                self.model_name, self.notes = source.name, source.notes
                cfg_file = Path(source.config.source)
                self.source_files = tuple(
                    f for f in (cfg_file, source.weights) if f is not None and f.is_file()
                )
            if chosen == "torch":
                self.backend = TorchBackend(
                    net, device, compile=compile, batch_size=batch_size, bf16=bf16
                )
            else:
                self.backend = exported_backend(chosen, net, threads, throughput=throughput)
        #: which engine runs the network, and why (``auto``'s choice is said)
        self.backend_reason = why
        self.num_classes = self.backend.num_classes
        self.stride = self.backend.stride
        self.names = class_names(self.num_classes, names if names is not None else embedded_names)
        self.input_hw = self._input_hw(img_size)
        if self.classes is not None:
            bad = [c for c in self.classes if not 0 <= c < self.num_classes]
            if bad:
                raise OptionError(f"--classes {bad} outside 0..{self.num_classes - 1}")

    def _input_hw(self, img_size: int | Sequence[int] | None) -> tuple[int, int]:
        if img_size is None:
            return tuple(self.backend.input_size)  # type: ignore[return-value]
        sides = [img_size, img_size] if isinstance(img_size, int) else list(img_size)
        if len(sides) == 1:
            sides = sides * 2
        if len(sides) != 2:
            raise OptionError(f"image size takes one side or height and width, got {sides}")
        h, w = (int(s) for s in sides)
        if h < self.stride or w < self.stride or h % self.stride or w % self.stride:
            raise DarkyoloError(
                f"image size {h}x{w} must be a positive multiple of the network stride {self.stride}"
            )
        return h, w

    @property
    def backend_name(self) -> str:
        return self.backend.name

    # ---- core

    def _detect_batch(self, items: list[_Item], keep_images: bool) -> list[Prediction]:
        return self._finish(items, self._network(items), keep_images)

    def _network(self, items: list[_Item]) -> Tensor:
        """The decoded rows of a batch (timed as ``inference``)."""
        t0 = time.perf_counter()
        rows = self.backend(np.stack([item.network_image for item in items]))
        self.timings.inference += time.perf_counter() - t0
        return rows

    def _finish(self, items: list[_Item], rows: Tensor, keep_images: bool) -> list[Prediction]:
        """NMS and the boxes mapped back to each picture (timed as ``postprocess``)."""
        t1 = time.perf_counter()
        found = postprocess(
            rows,
            self.input_hw,
            self.conf,
            self.iou,
            self.max_det,
            self.classes,
            self.multi_label,
            nms=self.backend.nms,
        )
        found = scale_to_original(found, [item.box for item in items])
        results = [self._prediction(item, det, keep_images) for item, det in zip(items, found)]
        self.timings.images += len(items)
        self.timings.postprocess += time.perf_counter() - t1
        return results

    def _prediction(self, item: _Item, det: Detections, keep_image: bool) -> Prediction:
        return Prediction(
            source=item.source,
            image_hw=item.box.original_hw,
            boxes=det.boxes.numpy().astype(np.float32),
            scores=det.scores.numpy().astype(np.float32),
            labels=det.labels.numpy().astype(np.int64),
            names=self.names,
            frame=item.frame,
            image=item.image if keep_image else None,
            repaired=item.repaired,
        )

    def predict(
        self, images: str | Path | np.ndarray | Sequence[str | Path | np.ndarray]
    ) -> list[Prediction]:
        """Detect in one picture or a list: file paths, or RGB uint8 ``[H, W, 3]`` arrays.

        Returns one :class:`Prediction` per picture, in order. A truncated file is decoded as far
        as it goes (its ``repaired`` says so); a file that cannot be read raises
        :class:`DataError` (use :meth:`stream` to carry on past bad files).
        """
        if isinstance(images, (str, Path, np.ndarray)):
            images = [images]
        results: list[Prediction] = []
        for start in range(0, len(images), self.batch_size):
            items = []
            t0 = time.perf_counter()
            for k, entry in enumerate(images[start : start + self.batch_size]):
                if isinstance(entry, np.ndarray):
                    _check_array(entry, start + k)
                    items.append(_prepare(f"<array {start + k}>", None, entry, self.input_hw, 0))
                else:
                    items.append(_prepare(str(entry), None, None, self.input_hw, self.max_pixels))
            self.timings.read += time.perf_counter() - t0
            results.extend(self._detect_batch(items, keep_images=False))
        return results

    def stream(
        self,
        sources: Iterable[str | Path] | SourceList,
        *,
        keep_images: bool = False,
        video_stride: int = 1,
        recursive: bool = False,
        workers: int = 2,
    ) -> Iterator[Prediction | ReadFailure]:
        """Detect over sources (files, folders, globs, ``.txt`` lists, videos), batch by batch.

        Yields a :class:`Prediction` per picture or video frame, and a :class:`ReadFailure` for
        each source that matched nothing or could not be read, in the order the sources name
        them; the run goes on past failures. ``sources`` may be a
        :class:`~darkyolo.data.images.SourceList` already collected.
        Reading and letterboxing run ``workers`` pictures ahead of the network in threads.
        """
        if video_stride < 1:
            raise OptionError(f"video stride must be at least 1, got {video_stride}")
        found = (
            sources
            if isinstance(sources, SourceList)
            else collect_sources(sources, recursive=recursive)
        )
        jobs = self._jobs(found.entries, video_stride)
        lookahead = max(2, 2 * self.batch_size)
        pending: deque[tuple[str, Future[_Item]]] = deque()
        batch: list[_Item] = []
        # what the batch's pictures and the failures among them yield, in input order
        # (None: the batch's next prediction)
        order: list[ReadFailure | None] = []
        # batches whose network call runs (or waits) in the network's own thread, oldest first:
        # while batch k+1 is in the network, batch k is post-processed and handed to the caller,
        # who draws and writes it (reading runs ahead in the reading threads)
        running: deque[tuple[Future[Tensor] | None, list[_Item], list[ReadFailure | None]]] = (
            deque()
        )
        with (
            ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
            ThreadPoolExecutor(max_workers=1) as network,
        ):

            def refill() -> None:
                while len(pending) < lookahead:
                    job = next(jobs, None)
                    if job is None:
                        return
                    source, make = job
                    pending.append((source, pool.submit(make)))

            def launch() -> None:
                rows = network.submit(self._network, list(batch)) if batch else None
                running.append((rows, list(batch), list(order)))
                batch.clear()
                order.clear()

            def finish_oldest() -> Iterator[Prediction | ReadFailure]:
                rows, items, entries = running.popleft()
                predictions = iter(self._finish(items, rows.result(), keep_images) if rows else [])
                for entry in entries:
                    yield next(predictions) if entry is None else entry

            refill()
            while pending:
                source, future = pending.popleft()
                t0 = time.perf_counter()
                try:
                    item = future.result()
                except DarkyoloError as error:
                    order.append(ReadFailure(source, str(error)))
                    if not batch:  # nothing ahead of it in this batch: said in its place
                        launch()
                    refill()
                    continue
                finally:
                    self.timings.read += time.perf_counter() - t0
                refill()
                batch.append(item)
                order.append(None)
                if len(batch) == self.batch_size:
                    launch()
                while len(running) > 1 or (running and running[0][0] is None):
                    yield from finish_oldest()
            if order:
                launch()
            while running:
                yield from finish_oldest()

    def _jobs(
        self, entries: list[Source], video_stride: int
    ) -> Iterator[tuple[str, Callable[[], _Item]]]:
        """In the sources' order: one job per picture and video frame, and a failing job for
        each entry that names nothing or a video that cannot be opened."""
        hw, limit = self.input_hw, self.max_pixels
        for entry in entries:
            path = str(entry.path)
            if entry.kind == "missing":
                yield path, (lambda m=entry.message: _raise(m))
            elif entry.kind == "image":
                yield path, (lambda p=path: _prepare(p, None, None, hw, limit))
            else:
                try:
                    for index, frame in iter_video_frames(entry.path, video_stride, limit):
                        yield (
                            path,
                            lambda p=path, i=index, f=frame: _prepare(p, i, f, hw, limit),
                        )
                except DataError as error:
                    yield path, (lambda m=str(error): _raise(m))


def _raise(message: str) -> _Item:
    raise DataError(message)


def _check_array(image: Any, index: int) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DataError(
            f"picture {index}: expected an RGB uint8 [H, W, 3] array, got "
            f"{image.dtype} {tuple(image.shape)}"
        )
