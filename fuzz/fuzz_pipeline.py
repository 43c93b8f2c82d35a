#!/usr/bin/env python3
"""atheris harness: the pipeline grammar (``pixelmill.Pipeline.parse``).

Each input is parsed as text (its bytes decoded as UTF-8, undecodable bytes kept as lone
surrogates) and, when that text is JSON, as the value ``json.loads`` makes of it. Parsing must
succeed or raise ``PixelmillError``; every pipeline that parses must come back equal from
``str(p)``, ``p.to_json()`` and ``json.dumps(p.to_json())``. Anything else is a crash: see
``fuzz_checks.py`` and ``README.md`` (next to this file) for how to run it.

    .venv/bin/python fuzz/fuzz_pipeline.py fuzz/work/pipeline fuzz/corpus/pipeline \\
        -dict=fuzz/pipeline.dict -max_len=4096 -rss_limit_mb=2048 -timeout=10 \\
        -atheris_runs=1000000 -artifact_prefix=fuzz/work/artifacts/pipeline/
"""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# Comparison feedback for str.startswith/endswith. (atheris 3.0.0's "RegEx" hook is left off:
# its pattern proxy takes no ``pos`` argument, so json's own ``WHITESPACE.match(s, 0)`` fails.)
atheris.enabled_hooks.add("str")

with atheris.instrument_imports(include=["pixelmill"]):
    import fuzz_checks

    import pixelmill.errors  # noqa: F401
    from pixelmill.pipeline import Pipeline  # noqa: F401


def test_one_input(data: bytes) -> None:
    fuzz_checks.check_pipeline(data)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
