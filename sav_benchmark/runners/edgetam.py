"""EdgeTAM through its own `sam2` module (a fork of an older SAM 2), with the SAM 2 runner's protocol.

This module runs in a process whose importable `sam2` is EdgeTAM's fork: the installed one, or a
worker started with an EdgeTAM checkout first on its import path (--edgetam_repo).
"""

from __future__ import annotations

import importlib

from .sam2_family import Sam2Runner
from .sizes import edgetam_size_overrides

TIMM_BACKBONE_MODULE = "sam2.modeling.backbones.timm"


def _backbone_without_download() -> None:
    """EdgeTAM's RepViT backbone is created by timm with pretrained=True, which downloads ImageNet
    weights at build time; the EdgeTAM checkpoint (or --weights random) replaces them anyway, and a
    Jetson in a lab often has no network. Build it with pretrained=False instead."""
    module = importlib.import_module(TIMM_BACKBONE_MODULE)
    create_model = module.create_model
    if getattr(create_model, "never_downloads", False):
        return

    def create_without_download(*args, **kwargs):
        kwargs["pretrained"] = False
        return create_model(*args, **kwargs)

    create_without_download.never_downloads = True
    module.create_model = create_without_download


class EdgeTamRunner(Sam2Runner):
    def size_overrides(self, imgsz: int | None) -> list[str]:
        return edgetam_size_overrides(imgsz)

    def build(self) -> None:
        _backbone_without_download()
        super().build()


RUNNER = EdgeTamRunner
