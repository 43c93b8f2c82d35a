"""Quality gates (``qc`` steps) pass, flag and fail, from the command line and from Python, and
``pixelmill compare`` measures two files."""

from __future__ import annotations

import json

import pytest
from conftest import photo

from pixelmill import api
from pixelmill.errors import PipelineError, QualityError
from pixelmill.pipeline import Pipeline
from pixelmill.quality import METRICS


@pytest.fixture
def source(make_image):
    return make_image("source.png", photo(256, 192))


def test_gates_parse_wherever_they_stand_and_format_back() -> None:
    pipeline = Pipeline.parse("model:sr-x2/qc:consistency>=35:on_fail=flag:ssimulacra2>60")
    assert str(pipeline) == "model:sr-x2/qc:consistency>=35:ssimulacra2>60:on_fail=flag"
    assert Pipeline.parse(pipeline.to_json()) == pipeline
    assert pipeline.to_json()[1]["gates"] == ["consistency>=35", "ssimulacra2>60"]
    with pytest.raises(PipelineError, match="unknown metric 'vmaf'"):
        Pipeline.parse("qc:vmaf>=90")
    with pytest.raises(PipelineError, match="missing gates"):
        Pipeline.parse("qc:on_fail=flag")


def test_python_gates_pass_flag_and_fail(source, tmp_path) -> None:
    passed = api.run(source, tmp_path / "pass.png", "sharpen/qc:ssim>=0.8:psnr-y>=25")
    assert [v.outcome for v in passed.qc] == ["pass"] and not passed.flagged
    assert set(passed.qc[0].values) == {"ssim", "psnr-y"} and passed.qc[0].values["ssim"] < 1

    flagged = api.run(source, tmp_path / "flag.png", "blur:4/qc:ssim>=0.95:on_fail=flag")
    assert flagged.flagged and flagged.qc[0].failed == ("ssim>=0.95",)
    assert (tmp_path / "flag.png").exists()

    with pytest.raises(QualityError, match=r"qc fail: ssim 0\.\d+; failed ssim>=0.95"):
        api.run(source, tmp_path / "fail.png", "blur:4/qc:ssim>=0.95")
    assert not (tmp_path / "fail.png").exists()


def test_a_gate_measures_the_previous_steps_input_or_the_given_reference(
        source, tmp_path, make_image) -> None:  # fmt: skip
    # the second gate sees the blur's input (the sharpened image), not the source
    outcome = api.run(source, tmp_path / "o.png", "blur:2/qc:psnr>=0/sharpen/qc:psnr>=0")
    first, second = (v.values["psnr"] for v in outcome.qc)
    assert first < second
    # a smaller result is compared with the shrunk source; an upscale's consistency with its input
    shrunk = api.run(source, tmp_path / "s.png", "resize:fit:128/qc:ssim>=0.9:psnr>=30")
    assert shrunk.qc[0].outcome == "pass"
    upscale = api.run(source, tmp_path / "u.png", "scale:2:kernel=cubic/qc:consistency>=38")
    assert upscale.qc[0].outcome == "pass"
    truth = make_image("truth.png", photo(256, 192, seed=7))
    against = api.run(source, tmp_path / "t.png", "qc:psnr>=0", reference=truth)
    assert against.qc[0].values["psnr"] < 25  # another photograph, not the source itself


def test_cli_gates_exit_codes_and_messages(cli, source, tmp_path) -> None:
    status, _, stderr = cli("run", source, tmp_path / "a.png", "-p", "qc:ssim>=0.5")
    assert status == 0 and "qc pass: ssim 1" in stderr
    status, _, stderr = cli("run", source, tmp_path / "b.png", "-p",
                            "blur:4/qc:ssim>=0.95:on_fail=flag", "-q")  # fmt: skip
    assert status == 0 and "flagged for review" in stderr and (tmp_path / "b.png").exists()
    status, _, stderr = cli("run", source, tmp_path / "c.png", "-p", "blur:4/qc:ssim>=0.95")
    assert status == QualityError.exit_code == 6
    assert "quality error" in stderr and "nothing was written" in stderr
    assert not (tmp_path / "c.png").exists()


def test_folder_runs_report_flagged_images(cli, tmp_path, make_image) -> None:
    (tmp_path / "in").mkdir()
    for name, seed in (("a.png", 1), ("b.png", 2)):
        photo(96, 64, seed=seed).write_to_file(str(tmp_path / "in" / name))
    status, _, stderr = cli("run", tmp_path / "in", tmp_path / "out", "-p",
                            "blur:3/qc:ssim>=0.99:on_fail=flag")  # fmt: skip
    assert status == 0
    assert stderr.count("flagged for review:") == 2 and "2 flagged for review" in stderr


def test_compare_prints_metrics_and_json(cli, source, tmp_path) -> None:
    api.run(source, tmp_path / "q.jpg", "encode:jpeg:q=30")
    status, out, stderr = cli("compare", source, tmp_path / "q.jpg", "-m",
                              "psnr,ssim,blockiness", "--json")  # fmt: skip
    assert status == 0, stderr
    scores = json.loads(out)
    assert list(scores) == ["psnr", "ssim", "blockiness"]
    assert 25 < scores["psnr"] < 45 and 0.5 < scores["ssim"] < 1 and scores["blockiness"] > 1
    status, out, _ = cli("compare", source, tmp_path / "q.jpg", "-m", "ssim")
    assert status == 0 and "higher is better" in out
    status, _, stderr = cli("compare", source, tmp_path / "q.jpg", "-m", "vmaf")
    assert status == 2 and "unknown metric 'vmaf'" in stderr
    status, _, stderr = cli("compare", source, tmp_path / "missing.png")
    assert status == 5
    whole = (tmp_path / "q.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 2])  # the header reads, pixels not
    status, _, stderr = cli("compare", tmp_path / "q.jpg", tmp_path / "cut.jpg", "-m", "psnr")
    assert status == 3 and "corrupt or truncated" in stderr and "internal" not in stderr


def test_metrics_lists_the_catalogue(cli) -> None:
    status, out, _ = cli("metrics")
    lines = out.splitlines()
    assert status == 0 and len(lines) == len(METRICS)
    assert lines[0].split()[:2] == ["psnr", "reference"] and "a description" in out
