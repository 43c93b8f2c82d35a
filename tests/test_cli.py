"""The command line: run on files and folders, info, ops."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyvips
from conftest import deep, load, photo

from pixelmill.pipeline import Pipeline, steps


def test_run_one_file(cli, make_image, tmp_path) -> None:
    status, _, stderr = cli("run", make_image("a.jpg", photo(400, 300)), tmp_path / "b.webp",
                            "-p", "resize:fit:200/encode:webp:q=70")  # fmt: skip
    assert status == 0 and "wrote" in stderr and "(webp, 200×150" in stderr
    assert load(tmp_path / "b.webp").width == 200


def test_pipeline_as_json_and_from_a_file(cli, make_image, tmp_path) -> None:
    source = make_image("a.png", photo(400, 300))
    as_json = json.dumps([{"op": "crop", "width": 50, "height": 40}])
    assert cli("run", source, tmp_path / "j.png", "-p", as_json, "-q") == (0, "", "")
    assert (load(tmp_path / "j.png").width, load(tmp_path / "j.png").height) == (50, 40)
    (tmp_path / "p.txt").write_text("thumbnail:64\n")
    assert cli("run", source, tmp_path / "f.png", "-p", f"@{tmp_path / 'p.txt'}")[0] == 0
    assert load(tmp_path / "f.png").width == 64
    status, _, stderr = cli("run", source, tmp_path / "g.png", "-p", "@missing.txt")
    assert status == 2 and "cannot read pipeline file missing.txt" in stderr


def test_run_a_folder_mirrors_it_and_reports_failures(cli, make_image, tmp_path) -> None:
    for name in ("a.jpg", "sub/b.png", "sub/deeper/c.tif"):
        make_image(f"src/{name}", photo(300, 200))
    (tmp_path / "src/sub/broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 nothing more")
    (tmp_path / "src/notes.txt").write_text("not an image, not picked up")
    (tmp_path / "src/.hidden.png").write_bytes(b"skipped")
    status, _, stderr = cli("run", tmp_path / "src", tmp_path / "dst", "-p",
                            "thumbnail:100/encode:webp", "--jobs", "2")  # fmt: skip
    assert status == 3
    written = sorted(str(p.relative_to(tmp_path / "dst")) for p in (tmp_path / "dst").rglob("*"))
    assert written == ["a.webp", "sub", "sub/b.webp", "sub/deeper", "sub/deeper/c.webp"]
    assert "3 done, 1 failed, of 4 images" in stderr
    assert "failed (input): " in stderr and "broken.jpg" in stderr
    assert load(tmp_path / "dst/sub/deeper/c.webp").width == 100


def test_run_a_folder_keeps_names_without_encode(cli, make_image, tmp_path) -> None:
    make_image("src/a.png", photo(50, 40))
    assert cli("run", tmp_path / "src", tmp_path / "dst", "-q")[0] == 0
    assert os.listdir(tmp_path / "dst") == ["a.png"]


def test_info(cli, make_image, tmp_path) -> None:
    image = deep(photo(64, 48, bands=4)).icc_transform("p3", depth=16)
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    source = make_image("a.tif", image)
    status, stdout, _ = cli("info", source, "--json")
    details = json.loads(stdout)
    assert status == 0
    assert {k: details[k] for k in ("format", "width", "height", "bands", "bit_depth", "alpha",
                                    "orientation", "pages", "colour_space")} == {
        "format": "tiff", "width": 64, "height": 48, "bands": 4, "bit_depth": 16,
        "alpha": True, "orientation": 6, "pages": 1, "colour_space": "rgb16",
    }  # fmt: skip
    assert details["icc"]["colour_space"] == "RGB" and "P3" in details["icc"]["description"]
    status, stdout, _ = cli("info", source)
    assert status == 0 and "bit_depth     16" in stdout


def test_ops_lists_every_step_in_every_form(cli) -> None:
    status, text, _ = cli("ops")
    assert status == 0 and all(f"\n{name}" in "\n" + text for name in steps())
    assert "resize:MODE:[WIDTH]:[HEIGHT]:[kernel=…]" in text
    status, listing, _ = cli("ops", "--json")
    assert [step["name"] for step in json.loads(listing)] == list(steps())
    status, schema, _ = cli("ops", "--schema")
    assert json.loads(schema) == Pipeline.json_schema()


def test_usage_errors_exit_2(cli) -> None:
    assert cli("run")[0] == 2
    assert cli("frobnicate")[0] == 2
    assert cli("run", "a.png", "b.png", "--jobs", "0")[0] == 2


def test_the_readme_lists_the_steps_as_their_declarations_say(cli) -> None:
    status, table, _ = cli("ops", "--markdown")
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert status == 0 and table.strip() in readme


def test_every_command_is_found_where_the_table_says() -> None:
    import importlib

    from pixelmill.cli.main import COMMANDS, cli

    for module in set(COMMANDS.values()):
        importlib.import_module(f"pixelmill.cli.{module}")
    assert sorted(cli.commands) == sorted(COMMANDS)
    for name, command in cli.commands.items():
        assert command.callback.__module__ == f"pixelmill.cli.{COMMANDS[name]}", name


def test_a_one_image_run_imports_only_what_it_needs(make_image, tmp_path) -> None:
    """A thumbnail in a fresh process imports neither the other commands nor numpy, Pillow,
    onnxruntime or the detector: their imports were most of a one-shot call's start-up."""
    import subprocess
    import sys

    source = make_image("a.jpg", photo(400, 300))
    code = ("import sys\nfrom pixelmill.cli import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit as stop:\n    assert stop.code == 0, stop.code\n"
            "print(' '.join(sorted(sys.modules)))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, "run", str(source),
                           str(tmp_path / "t.webp"), "-p", "thumbnail:64", "-q"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    loaded = set(done.stdout.split())
    assert "pixelmill.api" in loaded and (tmp_path / "t.webp").stat().st_size > 0
    heavy = {"numpy", "PIL", "onnxruntime", "pixelmill.engine.detection",
             "pixelmill.engine.tiled", "pixelmill.engine.targeted", "pixelmill.cli.batch",
             "pixelmill.cli.service", "pixelmill.cli.lab", "pixelmill.cli.datasets"}
    assert not heavy & loaded, heavy & loaded
