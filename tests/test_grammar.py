"""The pipeline grammar: round-trips, JSON form and schema, and every kind of error."""

from __future__ import annotations

import functools
import json

import jsonschema
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pixelmill.errors import PipelineError
from pixelmill.pipeline import Pipeline, Step
from pixelmill.pipeline import steps as all_steps
from pixelmill.pipeline.kinds import (
    Bool,
    Choice,
    Colour,
    Float,
    Gates,
    Int,
    IntChoice,
    Name,
    Names,
    Target,
)


def values_for(kind) -> st.SearchStrategy:
    if isinstance(kind, Int):
        return st.integers(kind.low, min(kind.high, 100_000))
    if isinstance(kind, Float):
        return st.floats(kind.low, kind.high, allow_nan=False)
    if isinstance(kind, Bool):
        return st.booleans()
    if isinstance(kind, Choice):
        return st.sampled_from(kind.values + tuple(kind.aliases))
    if isinstance(kind, IntChoice):
        return st.sampled_from(kind.values)
    if isinstance(kind, Colour):
        return st.sampled_from(["white", "#123", "#a0b0c0", "#01020304", "transparent"])
    if isinstance(kind, Name):
        return st.from_regex(r"[A-Za-z0-9_.\-]{1,20}", fullmatch=True)
    if isinstance(kind, Gates | Target):
        gate = st.builds("{}{}{}".format, st.sampled_from(sorted(kind.metrics())),
                         st.sampled_from([">=", "<=", ">", "<"]),
                         st.floats(-1e6, 1e6, allow_nan=False).map(repr))  # fmt: skip
        return gate if isinstance(kind, Target) else st.lists(gate, min_size=1, max_size=3)
    if isinstance(kind, Names):
        return st.lists(st.from_regex(r"[A-Za-z0-9_.\-]{1,10}", fullmatch=True), min_size=1,
                        max_size=3)  # fmt: skip
    raise AssertionError(f"no strategy for {kind}")


@st.composite
def steps(draw) -> Step:
    spec = all_steps()[draw(st.sampled_from(sorted(all_steps())))]
    values = {}
    for param in spec.params:
        if param.required or draw(st.booleans()):
            values[param.name] = draw(values_for(param.kind))
    try:
        return Step.make(spec.name, **values)
    except PipelineError:
        assume(False)


@st.composite
def pipelines(draw) -> Pipeline:
    body = draw(st.lists(steps().filter(lambda s: s.op != "encode"), max_size=5))
    tail = draw(st.lists(steps().filter(lambda s: s.op == "encode"), max_size=1))
    return Pipeline(tuple(body + tail))


@settings(max_examples=300, deadline=None)
@given(pipelines())
def test_text_and_json_forms_round_trip(pipeline: Pipeline) -> None:
    assert Pipeline.parse(str(pipeline)) == pipeline
    assert Pipeline.parse(pipeline.to_json()) == pipeline
    assert Pipeline.parse(json.dumps(pipeline.to_json())) == pipeline


@functools.cache
def schema_validator() -> jsonschema.Draft202012Validator:
    """The JSON schema of pipelines, checked and compiled once."""
    schema = Pipeline.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@settings(max_examples=200, deadline=None)
@given(pipelines())
def test_json_form_matches_the_generated_schema(pipeline: Pipeline) -> None:
    schema_validator().validate(pipeline.to_json())
    schema_validator().validate(str(pipeline))


def test_the_documented_example() -> None:
    text = "autorotate/resize:fit:1024:768/sharpen:0.6/encode:webp:q=80"
    pipeline = Pipeline.parse(text)
    assert str(pipeline) == text
    assert pipeline.to_json() == [
        {"op": "autorotate"},
        {"op": "resize", "mode": "fit", "width": 1024, "height": 768},
        {"op": "sharpen", "sigma": 0.6},
        {"op": "encode", "format": "webp", "q": 80},
    ]
    resize = pipeline.steps[1]
    assert (resize["kernel"], resize["upscale"], resize["gravity"]) == ("lanczos3", False, "centre")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("resize:fit::768", "resize:fit:height=768"),
        ("RESIZE:Fit:100", "resize:fit:100"),
        ("resize:fit:100:kernel=lanczos3", "resize:fit:100"),
        ("crop:10:20:center", "crop:10:20:centre"),
        ("crop:10:20", "crop:10:20"),
        ("encode:jpg:q=90", "encode:jpeg:q=90"),
        ("flip:v", "flip:vertical"),
        ("pad:5:background=#FFF", "pad:5:background=white"),
        ("pad:5:background=#12345678", "pad:5:background=#12345678"),
        ("rotate:90.0", "rotate:90"),
        ("scale:0.50", "scale:0.5"),
        ("resize:fit:100:upscale=yes", "resize:fit:100:upscale=true"),
        (" blur:2 / grayscale ", "blur:2/grayscale"),
        ("", ""),
    ],
)
def test_canonical_form(text: str, canonical: str) -> None:
    assert str(Pipeline.parse(text)) == canonical


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("resize:fitt:100", "resize: mode 'fitt' is not one of fit, fill, force"),
        ("resise:fit:100", "unknown step 'resise'; did you mean 'resize'?"),
        ("resize:fit", "resize: give width, height or both"),
        ("resize:fill:100", "resize: mode fill needs both width and height"),
        ("resize:fit:0", "resize: width '0' is out of range (1..10000000)"),
        ("resize:fit:abc", "resize: width 'abc' is not an integer 1..10000000"),
        ("resize:fit:1:2:3", "resize: too many arguments (4); it takes resize:MODE:[WIDTH]"),
        ("resize:fit:1:foo=2", "resize: unknown argument 'foo' (allowed: mode, width, height"),
        ("resize:fit:width=1:2", "resize: positional argument '2' after name=value"),
        ("resize:fit:1:width=2", "resize: width given twice"),
        ("blur", "blur: missing sigma (a number 0.01..1000); usage: blur:SIGMA"),
        ("blur:nan", "blur: sigma 'nan' is out of range (0.01..1000)"),
        ("resize:fit:1:upscale=maybe", "resize: upscale 'maybe' is not true or false"),
        ("pad:1:background=pink", "pad: background 'pink' is not a colour"),
        ("crop:10:10:x=1", "crop: give both x and y for a box"),
        ("crop:10:10:north:x=1:y=1", "crop: give either x and y or a gravity, not both"),
        ("a//b", "step 2 is empty"),
        ("encode:webp/blur:1", "encode: must be the last step and appear once"),
        ("encode:bmp", "encode: format 'bmp' is not one of jpeg, png, webp, avif, heic, tiff, gif"),
        ("encode:jpeg:lossless=true", "encode: lossless is not available for jpeg"),
        ("encode:png:q=80", "encode: q does not apply to png"),
        ("encode:webp:effort=9", "encode: effort 9 is out of range for webp (0..6)"),
        ("encode:jpeg:effort=3", "encode: effort does not apply to jpeg"),
        ("encode:jpeg:bitdepth=16", "encode: bitdepth 16 is not available for jpeg; allowed: 8"),
        ("encode:webp:pyramid=true", "encode: pyramid applies only to tiff, not webp"),
        ("encode:webp:q=80:lossless=true", "encode: give either q or lossless=true, not both"),
        ("[", "pipeline JSON is invalid"),
        ('{"op": "blur"}', 'pipeline JSON must be a list of steps, e.g. [{"op": "resize"'),
        ('[{"op": "rotate", "angle": 1' + "0" * 400 + "}]", "rotate: angle '1000"),
        ('[{"op": "scale", "factor": 1' + "0" * 5000 + "}]", "pipeline JSON is invalid"),
        ("crop:10:10:centre:x=1:y=1", "crop: give either x and y or a gravity, not both"),
        ("resize:fit:100:gravity=north", "resize: gravity applies to mode fill only, not fit"),
        ("thumbnail:100:gravity=smart", "thumbnail: gravity applies to mode fill only, not fit"),
        ("encode:png:bigtiff=false", "encode: bigtiff applies only to tiff, not png"),
        ('[{"sigma": 1}]', 'step 1 must be an object with "op"'),
        ('[{"op": "blur", "sigma": "x"}]', "blur: sigma 'x' is not a number 0.01..1000"),
        ('[{"op": "blur", "sigma": true}]', "blur: sigma 'true' is not a number"),
        ('[{"op": "resize", "mode": "fit", "width": 1.5}]', "resize: width '1.5' is not an integer"),
        ('[{"op": "blur", "sigma": 1, "radius": 2}]', "blur: unknown argument 'radius'"),
    ],
)
def test_errors_name_step_argument_value_and_what_is_allowed(source: str, message: str) -> None:
    with pytest.raises(PipelineError) as caught:
        Pipeline.parse(source)
    assert message in str(caught.value)


def test_json_form_accepts_typed_and_text_values() -> None:
    typed = Pipeline.parse([{"op": "resize", "mode": "fit", "width": 100, "upscale": True}])
    texts = Pipeline.parse([{"op": "resize", "mode": "fit", "width": "100", "upscale": "true"}])
    assert typed == texts == Pipeline.parse("resize:fit:100:upscale=true")


def test_every_step_is_described_for_ops() -> None:
    described = {spec.name: spec.describe() for spec in all_steps().values()}
    assert described["resize"]["params"][0] == {
        "name": "mode", "type": "one of fit, fill, force", "required": True, "default": None,
        "positional": True, "doc": "how the image meets the box",
    }  # fmt: skip
    assert all(d["doc"] for d in described.values())


def test_steps_load_once_when_threads_first_parse_at_once() -> None:
    """The first look-up registers the steps; threads parsing at the same moment (a batch run
    and its counting thread) must not register them twice."""
    import subprocess
    import sys

    code = ("import threading; from pixelmill.pipeline import Pipeline\n"
            "start = threading.Barrier(8); errors = []\n"
            "def parse():\n"
            "    start.wait()\n"
            "    try: Pipeline.parse('thumbnail:64/encode:webp')\n"
            "    except Exception as exc: errors.append(exc)\n"
            "threads = [threading.Thread(target=parse) for _ in range(8)]\n"
            "[t.start() for t in threads]; [t.join() for t in threads]\n"
            "assert not errors, errors\n")  # fmt: skip
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
