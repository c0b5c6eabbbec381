"""Registry of models. Nothing here imports torch: runner modules load only when a job needs them.

A model name is `<model>_<prompt>`, e.g. `sam2.1_tiny_points`; `static_mask` is the baseline;
`hf_<model>_<prompt>` is the same model through Hugging Face transformers (and the SAM 3 tracker,
`hf_sam3_tracker_<prompt>`, only there).
More runners can be added without changing this package: modules named in the environment variable
SAV_BENCHMARK_PLUGINS (comma-separated, importable) are imported once and call `register(spec)`.
"""

from __future__ import annotations

import difflib
import importlib
import os
from dataclasses import dataclass

from .. import PROG
from ..errors import UsageError

PROMPT_KINDS = ("points", "bbox", "mask")  # a model name is <model>_<prompt kind>
# EdgeTAM's memory encoder reshapes its spatial perceiver's latents with a view that fails for more
# than one object (RuntimeError: view size is not compatible ...), in its own vos_inference.py too.
EDGETAM_TOGETHER_PROBLEM = (
    "EdgeTAM cannot track several objects in one state: its spatial perceiver fails for more than one "
    "(github.com/facebookresearch/EdgeTAM/issues/15)"
)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    prompt: str
    module: str
    family: str
    config: str = ""
    checkpoint: str = ""
    uses_torch: bool = True
    together_problem: str = ""  # why the model cannot track several objects in one state ('' when it can)


SAM2_SIZES = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}
# family prefix -> (config folder in the sam2 package, checkpoint name prefix)
SAM2_FAMILIES = {"sam2.1": ("configs/sam2.1", "sam2.1_hiera"), "sam2": ("configs/sam2", "sam2_hiera")}


def _build_registry() -> dict[str, ModelSpec]:
    specs = {"static_mask": ModelSpec("static_mask", "mask", "sav_benchmark.runners.static_mask", "static", uses_torch=False)}
    for family, (config_dir, ckpt_prefix) in SAM2_FAMILIES.items():
        for size, short in SAM2_SIZES.items():
            for prompt in PROMPT_KINDS:
                name = f"{family}_{size}_{prompt}"
                specs[name] = ModelSpec(
                    name,
                    prompt,
                    "sav_benchmark.runners.sam2_family",
                    family,
                    config=f"{config_dir}/{ckpt_prefix}_{short}.yaml",
                    checkpoint=f"{ckpt_prefix}_{size}.pt",
                )
    for prompt in PROMPT_KINDS:
        specs[f"edgetam_{prompt}"] = ModelSpec(
            f"edgetam_{prompt}",
            prompt,
            "sav_benchmark.runners.edgetam",
            "edgetam",
            config="configs/edgetam.yaml",
            checkpoint="edgetam.pt",
            together_problem=EDGETAM_TOGETHER_PROBLEM,
        )
    specs.update(_transformers_specs())
    return specs


HF_PREFIX = "hf_"  # transformers' implementation of a model: hf_<model>_<prompt kind>
HF_MODULE = "sav_benchmark.runners.hf_video"
# Each model's folder under --checkpoint_dir: the name of its repository on the Hugging Face hub
# (scripts/download_checkpoints.sh fetches them).
HF_HUB_REPOSITORIES = {
    **{f"{family}_{size}": f"facebook/{family}-hiera-{size.replace('_', '-')}" for family in SAM2_FAMILIES for size in SAM2_SIZES},
    "edgetam": "yonigozlan/EdgeTAM-hf",
    "sam3_tracker": "facebook/sam3",
}


def _transformers_specs() -> dict[str, ModelSpec]:
    specs = {}
    for key, repository in HF_HUB_REPOSITORIES.items():
        family = "hf-" + key.split("_")[0]  # hf-sam2.1, hf-sam2, hf-edgetam, hf-sam3
        for prompt in PROMPT_KINDS:
            name = f"{HF_PREFIX}{key}_{prompt}"
            specs[name] = ModelSpec(name, prompt, HF_MODULE, family, config=key, checkpoint=repository.split("/")[1])
    return specs


MODELS: dict[str, ModelSpec] = _build_registry()
PLUGINS_VARIABLE = "SAV_BENCHMARK_PLUGINS"
_plugins_loaded = False


def register(spec: ModelSpec) -> None:
    """Add a model (from a plugin module); its runner module must define RUNNER."""
    if spec.name in MODELS and MODELS[spec.name] != spec:
        raise ValueError(f"model {spec.name} is registered already")
    MODELS[spec.name] = spec


def load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_VARIABLE, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise UsageError(f"{PLUGINS_VARIABLE}: cannot import {module} ({exc})") from None


def resolve_models(names: str) -> list[ModelSpec]:
    """Specs for a comma-separated list of names; an unknown name is a UsageError with a suggestion."""
    load_plugins()
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        raise UsageError(f"--models is empty; name at least one model (list them with: {PROG} models)")
    specs = []
    for name in wanted:
        if name not in MODELS:
            close = difflib.get_close_matches(name, list(MODELS), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UsageError(f"--models: unknown model {name}; {hint}known models: {', '.join(MODELS)}")
        if MODELS[name] in specs:
            raise UsageError(f"--models names {name} twice")
        specs.append(MODELS[name])
    return specs


def load_runner_class(spec: ModelSpec) -> type:
    """The runner class of a model family, importing its module (and torch) only now."""
    return importlib.import_module(spec.module).RUNNER
