"""Which jobs a run has, in the order they run.

With --objects separate (the default), one job per (video, object, model): a predictor of its own
for each object. With --objects together, one job per (video, model) tracks the objects prompted
on the video's first prompt frame in one state, as tools/vos_inference.py tracks a video's objects
(one image encoding per frame); each object that starts later, or cannot run, keeps a job of its
own, as that script tracks objects that appear later in the video (its separate mode). A model
that cannot track several objects in one state (EdgeTAM) tracks them separately, and its rows say why.
"""

from __future__ import annotations

from dataclasses import dataclass

from .runners import ModelSpec
from .split import PreparedObject, PreparedSplit, PreparedVideo

OBJECTS_SEPARATE, OBJECTS_TOGETHER = "separate", "together"
OBJECTS_MODES = (OBJECTS_SEPARATE, OBJECTS_TOGETHER)
Key = tuple[str, str, str]  # (video, object, model): a row's


@dataclass(frozen=True)
class PlannedJob:
    """One job: a model tracking one or more objects of a video with one predictor."""

    video: PreparedVideo
    objects: tuple[PreparedObject, ...]
    spec: ModelSpec
    together: bool  # the video's shared job of --objects together (its rows say so)
    warning: str = ""  # why an object that --objects together would share a job has one of its own

    def keys(self) -> list[Key]:
        return [(self.video.video_id, obj.object_id, self.spec.name) for obj in self.objects]

    @property
    def label(self) -> str:
        return f"{self.video.video_id}/{'+'.join(obj.object_id for obj in self.objects)} {self.spec.name}"


def together_objects(video: PreparedVideo) -> list[PreparedObject]:
    """The objects a video's shared job tracks: those prompted on its first prompt frame."""
    if video.problem:
        return []
    usable = [obj for obj in video.objects if not obj.skip_reason and not obj.problem]
    if not usable:
        return []
    first = min(obj.prompt_frame for obj in usable)
    return [obj for obj in usable if obj.prompt_frame == first]


def plan_jobs(split: PreparedSplit, specs: list[ModelSpec], objects: str) -> list[PlannedJob]:
    """Every job, video by video; within a video, in the order of its objects, each job for every model."""
    jobs = []
    for video in split.videos:
        shared = together_objects(video) if objects == OBJECTS_TOGETHER else []
        for obj in video.objects:
            if shared and obj is shared[0]:
                jobs += [job for spec in specs for job in _shared_jobs(video, shared, spec)]
            elif not any(obj is member for member in shared):
                jobs += [PlannedJob(video, (obj,), spec, False) for spec in specs]
    return jobs


def _shared_jobs(video: PreparedVideo, shared: list[PreparedObject], spec: ModelSpec) -> list[PlannedJob]:
    if len(shared) > 1 and spec.together_problem:
        return [PlannedJob(video, (obj,), spec, False, f"tracked separately: {spec.together_problem}") for obj in shared]
    return [PlannedJob(video, tuple(shared), spec, True)]


def whole_groups(split: PreparedSplit, specs: list[ModelSpec], jobs: list[PlannedJob]) -> list[set[Key]]:
    """Rows that are made together, so that a resume keeps all of a group or none: the rows of a
    shared job, and with label-map input (DAVIS, LVOS, MOSE) a model's rows of a video (scored on
    label maps put together from all of its objects)."""
    groups = [set(job.keys()) for job in jobs if len(job.objects) > 1]
    if split.label_maps:
        groups += [{(video.video_id, obj.object_id, spec.name) for obj in video.objects} for video in split.videos for spec in specs]
    return groups
