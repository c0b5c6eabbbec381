"""--compile: the sam2 package's full-model compilation (vos_optimized=True), refused where a
predictor lacks it. Compiling itself takes minutes on this CPU: the GPU tests run a compiled job."""

import pytest
from conftest import USAGE_ERROR, assert_usage_error, cli, require


@pytest.fixture(scope="module")
def split(synthetic_split):
    return synthetic_split(videos=1, frames=9, objects=1)


def edgetam_like_checkout(folder):
    """EdgeTAM's `sam2` as far as --compile looks: configs/edgetam.yaml, and a builder that takes
    **kwargs but has no vos_optimized (EdgeTAM forked SAM 2 before it had one)."""
    (folder / "sam2" / "configs").mkdir(parents=True)
    (folder / "sam2" / "__init__.py").write_text("")
    (folder / "sam2" / "configs" / "edgetam.yaml").write_text("")
    (folder / "sam2" / "build_sam.py").write_text(
        "def build_sam2_video_predictor(config_file, ckpt_path=None, device='cuda', mode='eval', hydra_overrides_extra=[], "
        "apply_postprocessing=True, **kwargs):\n"
        "    return None  # never called: --compile is refused before any build\n"
    )
    return folder


@pytest.mark.parametrize(
    "model,message",
    [
        ("static_mask", "--compile: static_mask has no predictor of the sam2 package to compile; drop --compile or that model"),
        (
            "edgetam_points",
            "--compile: edgetam_points's predictor has no full-model compilation (its build_sam.py has no vos_optimized; sam2 1.1 or later "
            "has it); drop --compile or that model",
        ),
    ],
)
def test_compile_is_refused_for_predictors_without_it(split, tmp_path, model, message):
    checkout = edgetam_like_checkout(tmp_path / "EdgeTAM")
    result = cli(
        "--split_dir",
        split,
        "--models",
        f"sam2.1_tiny_points,{model}",
        "--weights",
        "random",
        "--edgetam_repo",
        checkout,
        "--compile",
        "--output",
        tmp_path / "o.csv",
    )
    assert_usage_error(result, message)
    assert not (tmp_path / "o.csv").exists()


def test_compile_needs_its_warm_up(split, tmp_path):
    result = cli(
        "--split_dir",
        split,
        "--models",
        "sam2.1_tiny_points",
        "--weights",
        "random",
        "--compile",
        "--warmup_frames",
        "0",
        "--output",
        tmp_path / "o.csv",
    )
    assert (result.returncode, result.stderr) == (
        2,
        USAGE_ERROR + "--compile compiles during the warm-up, before the timers start; drop --warmup_frames 0\n",
    )


def test_compile_builds_the_packages_compiling_predictor(tmp_path, capsys):
    """The flag reaches the package: its VOS predictor, whose components are wrapped by
    torch.compile (compilation itself happens at the first call, in the warm-up)."""
    require("sam2.build_sam")
    from sav_benchmark.runners import MODELS
    from sav_benchmark.runners.base import RunSettings
    from sav_benchmark.runners.sam2_family import Sam2Runner

    runner = Sam2Runner(MODELS["sam2.1_tiny_points"], RunSettings("cpu", "float32", 128, "random", tmp_path, compile=True))
    runner.build()
    try:
        assert type(runner.predictor).__name__ == "SAM2VideoPredictorVOS"
        assert hasattr(runner.predictor.memory_attention.forward, "_torchdynamo_orig_callable")  # torch.compile's wrapper
    finally:
        runner.cleanup()
    assert capsys.readouterr().out == ""  # the package's "Compiling all components" line is kept off the driver's output
    plain = Sam2Runner(MODELS["sam2.1_tiny_points"], RunSettings("cpu", "float32", 128, "random", tmp_path))
    plain.build()
    assert type(plain.predictor).__name__ == "SAM2VideoPredictor"
    plain.cleanup()
