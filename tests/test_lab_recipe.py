"""Lab recipes: the bundled ones load, round-trip, and bad ones are refused by key and value."""

from __future__ import annotations

import pytest
import yaml

from pixelmill.errors import UsageError
from pixelmill.lab import recipe


@pytest.mark.parametrize("name", recipe.bundled())
def test_bundled_recipes_load_and_round_trip(name: str) -> None:
    loaded = recipe.load(name)
    assert loaded.name == name and loaded.train.warmup < loaded.train.steps
    assert recipe.parse(yaml.safe_load(yaml.safe_dump(loaded.to_dict())), name) == loaded


def test_the_bundled_recipes_cover_every_task() -> None:
    tasks = {(r.task, r.scale) for r in map(recipe.load, recipe.bundled())}
    assert {("super-resolution", 2), ("super-resolution", 4), ("denoise", 1),
            ("dejpeg", 1)} <= tasks  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"nmae": "x"}, "recipe t.yaml: unknown key 'nmae'"),
        ({"task": "sr"}, "task 'sr' is not one of super-resolution, denoise, dejpeg"),
        ({"scale": 3, "task": "denoise", "degradation": ["noise"]},
         "scale 3 does not suit denoise (1)"),
        ({"name": "my model"}, "name 'my model' is not a name of letters"),
        ({"net": {"arch": "resnet"}}, "net: arch 'resnet' is not one of espcn, fsrcnn, dncnn"),
        ({"net": {"arch": "espcn", "widths": [8]}}, "widths [8]: espcn needs 2 positive widths"),
        ({"train": {"lr": "fast"}}, "train.lr: 'fast' is not a float"),
        ({"train": {"steps": 0}}, "train: steps 0 must be 1 or more"),
        ({"train": {"loss": "l3"}}, "train: loss 'l3' is not one of l1, mse, charbonnier"),
        ({"data": {"photos": 1, "bundled": False}}, "data: photos 1.0: give folders"),
        ({"degradation": [{"noise": {"sigma": [30, 5]}}, "resize"]},
         "degradation[0].noise: sigma [30.0, 5.0] is not a range within 0..255"),
        ({"degradation": [{"blurr": {}}]}, "degradation[0]: {'blurr': {}} is not one of blur"),
        ({"degradation": [{"blur": {"kinds": ["box"]}}, "resize"]},
         "degradation[0].blur: kinds ['box'] must name one or more of isotropic"),
        ({"degradation": ["noise"]}, "degradation: the last resize must be one to the input size"),
        ({"degradation": [{"resize": {"factor": [0.5, 9]}}]}, "factor [0.5, 9.0] is not a range"),
        ({"teacher": {"weight": 0.5}}, "teacher: model is required"),
    ],
)  # fmt: skip
def test_bad_recipes_name_the_key_and_value(cli, tmp_path, tiny_recipe, change, message) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({**tiny_recipe(), **change}))
    with pytest.raises(UsageError) as refused:
        recipe.load(str(path))
    assert message in str(refused.value)
    status, _, stderr = cli("lab", "train", path)
    assert status == 2 and message in stderr


def test_an_unknown_recipe_lists_the_bundled_ones(cli) -> None:
    status, _, stderr = cli("lab", "train", "sr-x3")
    assert status == 2 and "'sr-x3' is neither a file nor a bundled recipe (dejpeg" in stderr
