"""--stream: a job whose memory does not grow with the video's length, and whose masks are the
package's own, bit for bit.

The package's `init_state` decodes every frame up front and keeps each at model resolution, and
its propagation keeps every frame's outputs. Here:

- frames come from `StreamedFrames`: decoded when first asked for, a few ahead on a background
  thread, only the last few kept. They are decoded by the package's own function and normalised
  in the same precision and order as its loader does, so each tensor is the one it would hold;
- after each frame, the non-conditioning outputs that no later frame can read are dropped. Which
  ones is worked out from the model's own settings (`oldest_output_read`); conditioning frames
  are always kept. A read of a dropped output (a predictor whose memory selection differs from
  the one described there) fails the job rather than change its masks;
- what is still kept per frame is kept small: the record of which frames were dropped as runs of
  frames, and the predictor's record of each tracked frame's direction as one shared record per
  direction (`TrackedFrames`), not a dict per frame.

A predictor whose internals differ from what this relies on is found before the job starts
(`streaming_problem`), and the job runs the package's plain path with a warning in its row.
"""

from __future__ import annotations

import bisect
import contextlib
import inspect
import operator
import os
import sys
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from types import MappingProxyType
from typing import Any, Callable, Iterator

import numpy as np
import torch
from PIL import Image

from ..split.model import FRAME_SUFFIXES

LOADER = "load_video_frames"  # what init_state calls to decode a folder of frames
DECODER = "_load_img_as_tensor"  # the loader's per-frame decoder: (path, image_size) -> (CHW float64, height, width)
NON_COND = "non_cond_frame_outputs"
# The predictor's record of the frames it tracked, {frame: {"reverse": bool}}: sam2's per object
# ({object index: record}), EdgeTAM's fork's (an older SAM 2) one for all objects.
TRACKED_PER_OBJECT, TRACKED_ALL = "frames_tracked_per_obj", "frames_already_tracked"
# The model settings that decide which earlier outputs a frame reads, and the method that reads them.
MEMORY_SETTINGS = ("num_maskmem", "memory_temporal_stride_for_eval", "use_obj_ptrs_in_encoder", "max_obj_ptrs_in_encoder")
MEMORY_READER = "_prepare_memory_conditioned_features"
READ_AHEAD = 2  # frames decoded ahead of the one asked for: a frame's model work hides their decoding
KEPT_BEHIND = 1  # frames kept behind it: the prompt frame is asked for again when propagation starts


class StreamingFailed(RuntimeError):
    """The model read an output that streaming had dropped: its masks would differ from the plain path's."""


def streaming_problem(predictor: Any) -> str:
    """Why --stream cannot run this predictor ('' when it can): each thing the streaming code relies
    on, checked on the predictor's class and the package's code before any frame is read."""
    init_state = inspect.unwrap(getattr(type(predictor), "init_state", None) or (lambda: None))
    code = getattr(init_state, "__code__", None)
    if code is None or LOADER not in code.co_names or not callable(init_state.__globals__.get(LOADER)):
        return f"its init_state does not load frames through {LOADER}"
    loader = init_state.__globals__[LOADER]
    if not callable(getattr(sys.modules.get(loader.__module__), DECODER, None)):
        return f"{loader.__module__} has no {DECODER} to decode one frame"
    if normalisation(loader) is None:
        return f"{loader.__module__}.{LOADER} has no default img_mean and img_std"
    for name in MEMORY_SETTINGS:
        if not isinstance(getattr(predictor, name, None), int):
            return f"it has no integer setting {name}"
    reader = inspect.unwrap(getattr(type(predictor), MEMORY_READER, None) or (lambda: None))
    code = getattr(reader, "__code__", None)
    if code is None or NON_COND not in code.co_consts or not set(MEMORY_SETTINGS) <= set(code.co_names):
        return f"its {MEMORY_READER} does not select memory from {', '.join(MEMORY_SETTINGS)} as streaming expects"
    return ""


def normalisation(loader: Callable) -> tuple[np.ndarray, np.ndarray] | None:
    """The loader's default mean and std (init_state passes none), as float32 per channel as it uses them."""
    try:
        parameters = inspect.signature(loader).parameters
        mean, std = parameters["img_mean"].default, parameters["img_std"].default
        return np.asarray(mean, np.float32)[:, None, None], np.asarray(std, np.float32)[:, None, None]
    except (KeyError, TypeError, ValueError):
        return None


def frame_paths(folder: str) -> list[str]:
    """The frames of a folder in the package loader's order: JPEG files sorted by their number."""
    names = [name for name in os.listdir(folder) if os.path.splitext(name)[1] in FRAME_SUFFIXES]
    names.sort(key=lambda name: int(os.path.splitext(name)[0]))
    if not names:
        raise RuntimeError(f"no images found in {folder}")
    return [os.path.join(folder, name) for name in names]


class StreamedFrames:
    """A video's frames at model resolution, as the package's frame tensor holds them, one at a time.

    A frame asked for is decoded (if it is not already), and the next READ_AHEAD frames are queued
    on a background thread; frames more than KEPT_BEHIND behind it are dropped. Tensors stay on the
    host: the predictor moves each to its device when it uses it."""

    def __init__(self, paths: list[str], image_size: int, decode: Callable, mean: np.ndarray, std: np.ndarray) -> None:
        self.image_size = image_size
        self._decode, self._mean, self._std = decode, mean, std
        self._start(paths)

    def _start(self, paths: list[str]) -> None:
        self.paths = paths
        self._frames: OrderedDict[int, Future] = OrderedDict()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frame-reader")
        self._lock = threading.Lock()

    @property
    def held(self) -> int:
        """How many frames are decoded or being decoded now."""
        return len(self._frames)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < len(self.paths):
            raise IndexError(f"frame {index} of a video of {len(self.paths)} frames")
        with self._lock:
            for wanted in range(index, min(index + 1 + READ_AHEAD, len(self.paths))):
                if wanted not in self._frames:
                    self._frames[wanted] = self._pool.submit(self._load, wanted)
            for kept in [k for k in self._frames if not index - KEPT_BEHIND <= k <= index + READ_AHEAD]:
                self._frames.pop(kept).cancel()
            frame = self._frames[index]
        return frame.result()

    def wait_for_read_ahead(self) -> None:
        """Return once every frame queued so far is decoded: for a measurement that charges all of
        the decoding to the frame that queued it (scripts/bare_loop.py)."""
        with self._lock:
            queued = list(self._frames.values())
        for frame in queued:
            if not frame.cancelled():
                frame.exception()  # waits; a failed decode is the job's to report, when it asks for the frame

    def _load(self, index: int) -> torch.Tensor:
        """One frame as the package's loader leaves it: decoded to float64 by its own decoder,
        stored as float32, then the mean subtracted and divided by the std, in float32."""
        image, _, _ = naming_the_frame(self._decode, self.paths[index], self.image_size)
        # In numpy, which computes on this thread alone: a torch op here would start a second team of
        # intra-op threads that competes with the model's for the cores. The same IEEE float32
        # operations give the same bits; contiguous channel planes, as the package's frame tensor
        # holds them (the decoder's tensor is a channels-last view, and kernels may take another
        # path on another layout).
        frame = np.ascontiguousarray(image.numpy(), dtype=np.float32)
        frame -= self._mean
        frame /= self._std
        return torch.from_numpy(frame)

    def close(self) -> None:
        with self._lock:
            for frame in self._frames.values():
                frame.cancel()
            self._frames.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)


def naming_the_frame(decode: Callable, path: str, *args: Any) -> Any:
    """decode(path, *args), whose failure names the frame (a MemoryError stays as it is: the row says oom)."""
    try:
        return decode(path, *args)
    except MemoryError:
        raise
    except Exception as exc:
        raise RuntimeError(f"frame {path}: {exc}") from exc


class ProcessedFrames(StreamedFrames):
    """StreamedFrames whose frames a function makes from their paths: for a pipeline that
    decodes and normalises its frames otherwise than the sam2 package (transformers')."""

    def __init__(self, paths: list[str], process: Callable[[str], torch.Tensor]) -> None:
        self._process = process
        self._start(paths)

    def _load(self, index: int) -> torch.Tensor:
        return naming_the_frame(self._process, self.paths[index])


def original_size(path: str) -> tuple[int, int]:
    """(height, width) of a frame, from its header."""
    with Image.open(path) as image:
        width, height = image.size
    return height, width


class Stream:
    """Streaming for one job of one predictor: the lazy frames while init_state runs, then the
    outputs trimmed frame by frame while propagation runs."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        init_state = inspect.unwrap(type(predictor).init_state)
        self._namespace = init_state.__globals__
        self._loader = self._namespace[LOADER]
        self._decode = getattr(sys.modules[self._loader.__module__], DECODER)
        self.frames: StreamedFrames | None = None
        self._watched: list[WatchedOutputs] = []

    @contextlib.contextmanager
    def frames_on_demand(self) -> Iterator[None]:
        """While init_state runs, its loader hands it StreamedFrames instead of every frame decoded."""

        def load_lazily(video_path: Any, image_size: int, **_: Any) -> tuple[StreamedFrames, int, int]:
            paths = frame_paths(str(video_path))
            mean, std = normalisation(self._loader)
            self.frames = StreamedFrames(paths, image_size, self._decode, mean, std)
            return (self.frames, *original_size(paths[-1]))  # the package's loader reports the last frame's size

        self._namespace[LOADER] = load_lazily
        try:
            yield
        finally:
            self._namespace[LOADER] = self._loader

    def watch(self, state: dict[str, Any]) -> None:
        """Before propagation: the state's non-conditioning outputs (per object, and the combined
        ones of older predictors) become WatchedOutputs, which trimming can empty, and its records
        of tracked frames become TrackedFrames."""
        for holder in _output_holders(state):
            if not isinstance(holder[NON_COND], WatchedOutputs):
                holder[NON_COND] = WatchedOutputs(holder[NON_COND])
            self._watched.append(holder[NON_COND])
        for holder, key in _tracked_records(state):
            if not isinstance(holder[key], TrackedFrames):
                holder[key] = TrackedFrames(holder[key])

    def frame_done(self, frame: int, num_frames: int) -> None:
        """Drop what tracking the frames after `frame` cannot read; fail if the model read a dropped output."""
        fail_if_misread(self._watched)
        oldest = oldest_output_read(self.predictor, frame + 1, num_frames)
        for outputs in self._watched:
            outputs.drop_before(oldest, frame)

    def close(self) -> None:
        self._watched = []
        if self.frames is not None:
            self.frames.close()
            self.frames = None


def fail_if_misread(watched: list[WatchedOutputs]) -> None:
    """Fail the job if the model read an output that streaming dropped (its masks could differ)."""
    for outputs in watched:
        if outputs.misread:
            raise StreamingFailed(
                f"--stream dropped {outputs.misread}: this model selects its memory otherwise than streaming expects; "
                "rerun with --no-stream"
            )


def _output_holders(state: dict[str, Any]) -> list[dict[str, Any]]:
    holders = [per_object for per_object in state.get("output_dict_per_obj", {}).values()]
    if isinstance(state.get("output_dict"), dict):  # older predictors (EdgeTAM's) also keep all objects together
        holders.append(state["output_dict"])
    return [holder for holder in holders if isinstance(holder.get(NON_COND), dict)]


def _tracked_records(state: dict[str, Any]) -> list[tuple[dict[Any, Any], Any]]:
    """Where the state keeps its records of tracked frames, as (holder, key) pairs."""
    per_object = state.get(TRACKED_PER_OBJECT)
    places = [(per_object, index) for index in per_object] if isinstance(per_object, dict) else []
    places.append((state, TRACKED_ALL))
    return [(holder, key) for holder, key in places if isinstance(holder.get(key), dict)]


def oldest_output_read(model: Any, frame: int, num_frames: int) -> int:
    """The oldest frame whose non-conditioning output tracking `frame` forward can read (`frame`
    itself when it reads none). As the model selects them (SAM2Base._prepare_memory_conditioned_features):
    the memory bank's num_maskmem - 1 frames, the previous frame and then every stride-th frame
    before frame - 1; and the object pointers of up to max_obj_ptrs_in_encoder - 1 previous frames
    (fewer in a shorter video). Every term grows with `frame`, so a later frame reads nothing older."""
    oldest = frame
    if model.num_maskmem > 1:
        oldest = frame - 1
    if model.num_maskmem > 2:
        stride = 1 if model.training else model.memory_temporal_stride_for_eval
        oldest = min(oldest, ((frame - 2) // stride) * stride - (model.num_maskmem - 3) * stride)
    if model.use_obj_ptrs_in_encoder:
        pointers = min(num_frames, model.max_obj_ptrs_in_encoder)
        oldest = min(oldest, frame - (pointers - 1))
    return oldest


class TrackedFrames(dict):
    """A predictor's record of the frames it has tracked, {frame: {"reverse": bool}}, whose records
    of one direction are one shared read-only mapping: a frame costs its entry in this dict, not a
    dict of its own as well (184 bytes). The predictor only reads the records' "reverse"."""

    def __setitem__(self, frame: Any, record: Any) -> None:
        super().__setitem__(frame, SHARED_RECORDS.get(_record_key(record), record))


def _record_key(record: Any) -> Any:
    if isinstance(record, dict) and record.keys() == {"reverse"} and isinstance(record["reverse"], bool):
        return record["reverse"]
    return None


SHARED_RECORDS = {reverse: MappingProxyType({"reverse": reverse}) for reverse in (False, True)}


class FrameRuns:
    """A set of frame numbers held as runs of consecutive frames: streaming drops a long video's
    outputs in order, so its dropped frames are one run or a few, whatever the video's length."""

    def __init__(self) -> None:
        self._starts: list[int] = []  # runs [start, end), sorted, neither overlapping nor touching
        self._ends: list[int] = []

    def add(self, frame: int) -> None:
        after = bisect.bisect_right(self._starts, frame)  # the first run that starts after the frame
        if after and frame < self._ends[after - 1]:
            return
        joins_before = bool(after) and self._ends[after - 1] == frame
        joins_after = after < len(self._starts) and self._starts[after] == frame + 1
        if joins_before and joins_after:
            self._ends[after - 1] = self._ends.pop(after)
            del self._starts[after]
        elif joins_before:
            self._ends[after - 1] = frame + 1
        elif joins_after:
            self._starts[after] = frame
        else:
            self._starts.insert(after, frame)
            self._ends.insert(after, frame + 1)

    def __contains__(self, frame: object) -> bool:
        try:
            frame = operator.index(frame)  # an int, or an integer such as numpy's, as a set would find it
        except TypeError:
            return False
        after = bisect.bisect_right(self._starts, frame)
        return bool(after) and frame < self._ends[after - 1]

    def __bool__(self) -> bool:
        return bool(self._starts)

    def first(self) -> int:
        return self._starts[0]

    def last(self) -> int:
        return self._ends[-1] - 1

    def __iter__(self) -> Iterator[int]:
        for start, end in zip(self._starts, self._ends):
            yield from range(start, end)


class WatchedOutputs(dict):
    """A predictor's non-conditioning outputs by frame, from which outputs can be dropped. Once some
    are, a lookup of a dropped frame, or a look at all of them (a loop, len, keys, values, items,
    copy), is remembered in `misread`, so that the job fails instead of going on with less memory
    than the plain path has. (Removing one, as a predictor clearing memory around a correction
    does, leaves what the plain path would hold: no misread.)"""

    def __init__(self, outputs: dict[int, Any]) -> None:
        super().__init__(outputs)
        self.dropped = FrameRuns()
        self.misread = ""
        self._tracking = -1

    def drop_before(self, oldest: int, done: int) -> None:
        for frame in [frame for frame in dict.keys(self) if frame < oldest]:
            dict.__delitem__(self, frame)
            self.dropped.add(frame)
        self._tracking = done + 1

    def _lookup(self, frame: Any) -> None:
        if not self.misread and frame in self.dropped:
            self.misread = f"the memory of frame {frame}, which the model read at frame {self._tracking}"

    def _look_at_all(self) -> None:
        if not self.misread and self.dropped:
            self.misread = (
                f"the memory of frames {self.dropped.first()}-{self.dropped.last()}, and the model went through every frame's at frame "
                f"{self._tracking}"
            )

    def get(self, frame: Any, default: Any = None) -> Any:
        self._lookup(frame)
        return super().get(frame, default)

    def __getitem__(self, frame: Any) -> Any:
        self._lookup(frame)
        return super().__getitem__(frame)

    def __contains__(self, frame: Any) -> bool:
        self._lookup(frame)
        return super().__contains__(frame)

    def __iter__(self) -> Iterator[Any]:
        self._look_at_all()
        return super().__iter__()

    def __len__(self) -> int:
        self._look_at_all()
        return super().__len__()

    def keys(self) -> Any:
        self._look_at_all()
        return super().keys()

    def values(self) -> Any:
        self._look_at_all()
        return super().values()

    def items(self) -> Any:
        self._look_at_all()
        return super().items()

    def copy(self) -> dict[Any, Any]:
        self._look_at_all()
        return dict(super().items())
