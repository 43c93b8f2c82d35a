"""The deployment files (Dockerfile, compose.yaml, deploy/), checked without a container engine.

They are validated against their published schemas (the Compose spec, Prometheus' and the CRDs'
schemas shipped in deploy/schemas/, the Kubernetes schemas bundled by ``kubernetes-validate``)
and against pixelmill itself: every pixelmill command they run parses with the real command
line, every ``PIXELMILL_*`` variable they set is a setting (with a value it accepts), every
probe and health check asks a real route, and every metric the dashboard and the alert rules
read is one that pixelmill exports.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import dockerfile
import jsonschema
import kubernetes_validate
import pytest
import sqlalchemy as sa
import yaml
from conftest import postgres_schema

from pixelmill.cli import cli
from pixelmill.config import CONFIG_ENV, ENV_PREFIX, Settings
from pixelmill.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SCHEMAS = DEPLOY / "schemas"
KUBERNETES = DEPLOY / "kubernetes"
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
"""The oldest Kubernetes release the manifests are meant for, and the newest whose schemas
kubernetes-validate bundles."""
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS"}
"""Series that Prometheus itself makes, which a query may read besides pixelmill's."""


# --- reading the files ---

def load_yaml(path: Path) -> list[Any]:
    with open(path, encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def compose() -> dict[str, Any]:
    (found,) = load_yaml(ROOT / "compose.yaml")
    return found


def manifests() -> list[tuple[str, dict[str, Any]]]:
    """Every Kubernetes object of deploy/kubernetes/, with the file it is in."""
    return [(str(path.relative_to(ROOT)), doc) for path in sorted(KUBERNETES.rglob("*.yaml"))
            for doc in load_yaml(path)]  # fmt: skip


def objects(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in manifests() if doc["kind"] == kind]


def named(kind: str, name: str) -> dict[str, Any]:
    (found,) = [doc for doc in objects(kind) if doc["metadata"]["name"] == name]
    return found


def instructions() -> list[dockerfile.Command]:
    return list(dockerfile.parse_file(str(ROOT / "Dockerfile")))


def final_stage() -> list[dockerfile.Command]:
    found = instructions()
    start = max(i for i, command in enumerate(found) if command.cmd == "FROM")
    return found[start:]


def exec_form(command: dockerfile.Command) -> list[str]:
    assert command.json, f"{command.original}: use the exec (JSON) form"
    return list(command.value)


def image_entrypoint() -> list[str]:
    (entrypoint,) = [c for c in final_stage() if c.cmd == "ENTRYPOINT"]
    return exec_form(entrypoint)


def env_example() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / "compose.env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message} (a missing VAR fails here)."""

    def value(match: re.Match[str]) -> str:
        name, how, rest = match.group(1), match.group(2) or "", match.group(3) or ""
        if name in env and (env[name] or ":" not in how):
            return env[name]
        assert how.endswith("-"), f"${{{name}}} is not set (compose.env.example): {rest}"
        return rest

    return re.sub(r"\$\{(\w+)(:?[-?])?([^}]*)\}", value, text)


def strings(found: Any) -> Iterator[str]:
    """Every string value in a parsed document."""
    if isinstance(found, dict):
        for value in found.values():
            yield from strings(value)
    elif isinstance(found, list):
        for value in found:
            yield from strings(value)
    elif isinstance(found, str):
        yield found


# --- what pixelmill really is ---

def pixelmill_runs(argv: list[str]) -> Iterator[list[str]]:
    """The arguments of each pixelmill command that ``argv`` runs: pixelmill itself, a
    command's ``-- pixelmill …`` (ray job submit) or the commands of a shell's script."""
    if not argv:
        return
    if os.path.basename(argv[0]) == "pixelmill":
        yield argv[1:]
    elif os.path.basename(argv[0]) in ("sh", "bash") and "-c" in argv:
        yield from shell_runs(argv[argv.index("-c") + 1])
    elif "--" in argv:
        yield from pixelmill_runs(argv[argv.index("--") + 1:])


def shell_runs(script: str) -> Iterator[list[str]]:
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    for token in [*lexer, ";"]:
        if token in (";", "&&", "||", "|", "&"):
            yield from pixelmill_runs(words)
            words = []
        else:
            words.append(token)


def parse_command(args: list[str]) -> click.Context:
    """Parse ``pixelmill ARGS`` as the real command line does, without running it: an unknown
    command or option, or a bad value, raises click's error."""
    command: click.Command = cli
    words, path = list(args), ["pixelmill"]
    while isinstance(command, click.Group):
        found = command.get_command(click.Context(command), words[0]) if words else None
        if found is None:
            raise click.UsageError(f"{' '.join(path)} has no command {words[:1]}")
        path.append(words.pop(0))
        command = found
    return command.make_context(" ".join(path), words)


def known_variables() -> set[str]:
    """The PIXELMILL_* variables pixelmill reads: one per setting, the settings file's, and
    those of command-line options."""
    found = {ENV_PREFIX + field.name.upper() for field in dataclasses.fields(Settings)}
    found.add(CONFIG_ENV)
    for param in cli.params:
        found.update([param.envvar] if isinstance(param.envvar, str) else param.envvar or [])
    return found


def check_settings(env: dict[str, str]) -> None:
    """Every PIXELMILL_* variable of ``env`` is a setting, and the settings load with them."""
    ours = {name: value for name, value in env.items() if name.startswith(ENV_PREFIX)}
    unknown = sorted(set(ours) - known_variables())
    assert not unknown, f"not settings of pixelmill: {unknown}"
    saved = dict(os.environ)
    try:
        os.environ.update({k: v for k, v in ours.items() if k != CONFIG_ENV})
        Settings.load()
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The real API, on the embedded default, in-process."""
    from fastapi.testclient import TestClient

    from pixelmill.service.app import create_app

    settings = Settings(data_dir=str(tmp_path_factory.mktemp("deploy-api")))
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def exported(api: Any) -> set[str]:
    """Every series name pixelmill exports: the API's /metrics, and the default registry of a
    process that has imported the worker (what ``pixelmill worker --metrics-port`` serves)."""
    from prometheus_client import REGISTRY
    from prometheus_client.parser import text_string_to_metric_families

    import pixelmill.jobs.worker  # noqa: F401  (its metrics, in the default registry)

    answer = api.get("/metrics")
    assert answer.status_code == 200
    families = [*text_string_to_metric_families(answer.text), *REGISTRY.collect()]
    suffixes = {"counter": ("_total", "_created"), "gauge": ("",), "info": ("_info",),
                "histogram": ("_bucket", "_count", "_sum", "_created"),
                "summary": ("", "_count", "_sum", "_created")}  # fmt: skip
    names = set()
    for family in families:
        names.update(family.name + end for end in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


PROMQL_SKIPPED = re.compile(
    r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"  # strings
    r"|\{[^}]*\}|\[[^\]]*\]"  # label matchers, ranges
    r"|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"  # label lists
    r"|\$\{?\w+\}?")  # Grafana's variables  # fmt: skip
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                "or", "unless", "offset", "inf", "nan"}  # fmt: skip


def promql_metrics(expr: str) -> set[str]:
    """The series names a PromQL expression reads (not its functions, labels or keywords)."""
    text = PROMQL_SKIPPED.sub(" ", expr)
    found = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][\w:]*", text):
        if match.group().lower() in PROMQL_WORDS or text[match.end():].lstrip().startswith("("):
            continue
        found.add(match.group())
    return found


# --- the checkers themselves can fail ---

def test_the_checkers_catch_what_is_wrong() -> None:
    assert promql_metrics('sum by (kind) (rate(pixelmill_errors_total{origin="job"}[5m])) '
                          "/ on (x) group_left (y) up offset 1h > 0.5e3") == {
        "pixelmill_errors_total", "up"}  # fmt: skip
    assert promql_metrics("histogram_quantile(0.9, sum by (le) (rate(a_bucket[$__rate_interval])"
                          "))") == {"a_bucket"}  # fmt: skip
    with pytest.raises(click.UsageError):
        parse_command(["no-such-command"])
    with pytest.raises(click.NoSuchOption):
        parse_command(["serve", "--no-such-option"])
    with pytest.raises(click.BadParameter):
        parse_command(["serve", "--port", "http"])
    with pytest.raises(AssertionError, match="PIXELMILL_NO_SUCH"):
        check_settings({"PIXELMILL_NO_SUCH": "1"})
    with pytest.raises(UsageError, match="max_memory"):
        check_settings({"PIXELMILL_MAX_MEMORY": "1GiB"})
    assert list(shell_runs("x && pixelmill models list | y; pixelmill sample a.jpg")) == [
        ["models", "list"], ["sample", "a.jpg"]]  # fmt: skip


# --- the image ---

def test_dockerfile_is_multi_stage_with_a_small_non_root_runtime() -> None:
    found = instructions()
    stages = [c for c in found if c.cmd == "FROM"]
    assert len(stages) >= 2
    names = {c.value[2].lower() for c in stages[:-1] if len(c.value) == 3}
    assert names, "the earlier stages need names (FROM … AS NAME)"
    final = final_stage()
    assert re.fullmatch(r"python:\$\{PYTHON\}-slim|python:3\.\d+-slim", final[0].value[0])
    assert any(c.cmd == "ARG" and c.value[0] == "PYTHON=3.11" for c in found)
    taken = [flag for c in final for flag in c.flags if "from=" in flag]
    assert taken and all(re.search(r"from=(\w+)", flag)[1] in names for flag in taken)
    users = [c.value[0] for c in final if c.cmd == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_installs_the_wheel_with_its_extras_and_checks_the_models() -> None:
    run = " ".join(" ".join(c.value) for c in final_stage() if c.cmd == "RUN")
    arg = {c.value[0].split("=")[0]: c.value[0].split("=", 1)[1] for c in final_stage()
           if c.cmd == "ARG" and "=" in c.value[0]}  # fmt: skip
    assert {"s3", "postgres"} <= set(arg["EXTRAS"].split(","))
    assert re.search(r"pip install .*pixelmill-\*\.whl\)?\[\$\{EXTRAS\}\]", run)
    assert ["models", "list"] in list(shell_runs(run))
    # The models are package data, so the wheel carries them (pyproject.toml).
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "models/bundled/*" in data["package-data"]["pixelmill"]


def test_dockerfile_commands_are_real_commands() -> None:
    (cmd,) = [c for c in final_stage() if c.cmd == "CMD"]
    runs = list(pixelmill_runs(image_entrypoint() + exec_form(cmd)))
    assert runs and runs[0][0] == "serve"
    for args in runs + [a for c in final_stage() if c.cmd == "RUN"
                        for a in shell_runs(" ".join(c.value))]:  # fmt: skip
        parse_command(args)


def test_dockerfile_healthcheck_asks_healthz_of_the_served_port(api: Any) -> None:
    (check,) = [c for c in final_stage() if c.cmd == "HEALTHCHECK"]
    assert check.value[0] == "CMD"
    urls = re.findall(r"https?://[^'\" ]+", " ".join(check.value))
    assert len(urls) == 1
    url = urlsplit(urls[0])
    assert url.path == "/healthz" and api.get(url.path).status_code == 200
    (cmd,) = [c for c in final_stage() if c.cmd == "CMD"]
    (args,) = pixelmill_runs(image_entrypoint() + exec_form(cmd))
    assert url.port == parse_command(args).params["port"]


def test_dockerfile_environment_is_made_of_settings() -> None:
    env = {}
    for command in final_stage():
        if command.cmd == "ENV":
            env.update(zip(command.value[::2], command.value[1::2]))
    assert "PIXELMILL_DATA_DIR" in env
    check_settings(env)


def test_dockerignore_lets_in_what_the_build_copies() -> None:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            rules.append((line.startswith("!"), line.lstrip("!").strip("/")))

    def ignored(path: str) -> bool:
        parts = path.split("/")
        result = False
        for negated, pattern in rules:
            regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
            regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
            if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
                result = not negated
        return result

    copied = [c.value[:-1] for c in instructions()
              if c.cmd == "COPY" and not any("from=" in f for f in c.flags)]  # fmt: skip
    sources = [s.rstrip("/") for value in copied for s in value]
    assert "src" in sources
    for source in sources:
        files = [source] if (ROOT / source).is_file() else [
            str(p.relative_to(ROOT)) for p in (ROOT / source).rglob("*")
            if p.is_file() and not {"__pycache__", "pixelmill.egg-info"} & set(p.parts)]
        assert files and not [f for f in files if ignored(f)], source
    bundled = ROOT / "src/pixelmill/models/bundled"
    assert any(bundled.iterdir())
    assert not [p for p in bundled.iterdir() if ignored(str(p.relative_to(ROOT)))]
    assert ignored("tests/test_deploy.py") and ignored(".venv/bin/python")
    assert ignored("src/pixelmill/__pycache__/api.cpython-311.pyc")


# --- compose ---

def test_compose_validates_against_the_compose_spec() -> None:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(compose())
    env = env_example()
    resolved = yaml.safe_load(interpolate((ROOT / "compose.yaml").read_text(), env))
    jsonschema.Draft7Validator(schema).validate(resolved)


def test_compose_has_the_scaled_set_up() -> None:
    services = compose()["services"]
    assert {"api", "worker", "postgres", "seaweedfs", "prometheus", "grafana"} <= set(services)
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["seaweedfs"]["image"].startswith("chrislusf/seaweedfs:")
    assert "-s3" in services["seaweedfs"]["command"]
    built = [name for name, service in services.items() if service.get("build")]
    assert {"api", "worker"} <= set(built)
    assert len({services[name]["image"] for name in built}) == 1


def test_compose_commands_are_real_commands() -> None:
    services = compose()["services"]
    runs = {}
    for name, service in services.items():
        argv = service.get("entrypoint", image_entrypoint() if service.get("build") else [])
        for args in pixelmill_runs([*argv, *service.get("command", [])]):
            parse_command(args)
            runs[name] = args
    assert runs["api"][0] == "serve" and runs["worker"][0] == "worker"


def test_compose_settings_are_settings_and_secrets_are_not_written_in_it() -> None:
    env = env_example()
    assert env and all(value == "change-me" for value in env.values())
    text = (ROOT / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{(\w+)", text))
    assert used <= set(env), f"not in deploy/compose.env.example: {used - set(env)}"
    resolved = yaml.safe_load(interpolate(text, env))
    secret = re.compile(r"PASSWORD|SECRET|SIGNING|ACCESS_KEY")
    for name, service in compose()["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            if secret.search(variable):
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", str(value)), (name, variable)
        check_settings({k: str(v) for k, v in
                        (resolved["services"][name].get("environment") or {}).items()})
    s3 = json.loads(resolved["configs"]["seaweedfs-s3"]["content"])
    (identity,) = s3["identities"]
    assert identity["credentials"] == [{"accessKey": "change-me", "secretKey": "change-me"}]
    assert not [value for value in strings(compose()) if "change-me" in value]
    assert (DEPLOY / ".gitignore").read_text().split("\n").count("compose.env") == 1


def test_compose_mounts_exist_and_prometheus_finds_every_target() -> None:
    services = compose()["services"]
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), source
    (config,) = load_yaml(DEPLOY / "prometheus/prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    (api,) = jobs["pixelmill-api"]["static_configs"][0]["targets"]
    host, port = api.split(":")
    (args,) = pixelmill_runs(image_entrypoint() + services[host]["command"])
    assert int(port) == parse_command(args).params["port"]
    (found,) = jobs["pixelmill-worker"]["dns_sd_configs"]
    (host,) = found["names"]
    (args,) = pixelmill_runs(image_entrypoint() + services[host]["command"])
    assert found["port"] == parse_command(args).params["metrics_port"]
    mounted = [v for v in services["prometheus"]["volumes"] if v.startswith("./deploy/prometheus")]
    assert mounted[0].split(":")[1] == "/etc/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]


def test_grafana_provisioning_points_at_the_dashboard_and_datasource() -> None:
    services = compose()["services"]
    mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"] if v.startswith("."))
    (datasources,) = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and urlsplit(source["url"]).hostname == "prometheus"
    (providers,) = load_yaml(DEPLOY / "grafana/provisioning/dashboards/pixelmill.yml")
    (provider,) = providers["providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboard = json.loads((DEPLOY / "grafana/dashboards/pixelmill.json").read_text())
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]


# --- Prometheus and Grafana read only what pixelmill exports ---

def test_prometheus_config_validates_and_loads_the_alert_rules() -> None:
    schema = json.loads((SCHEMAS / "prometheus.json").read_text())
    (config,) = load_yaml(DEPLOY / "prometheus/prometheus.yml")
    jsonschema.Draft7Validator(schema).validate(config)
    assert "alerts.yml" in config["rule_files"]


def test_dashboard_reads_only_exported_metrics(exported: set[str]) -> None:
    dashboard = json.loads((DEPLOY / "grafana/dashboards/pixelmill.json").read_text())
    used: dict[str, set[str]] = {}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in promql_metrics(target["expr"]):
                used.setdefault(name, set()).add(panel["title"])
    unknown = {name: titles for name, titles in used.items()
               if name not in exported | PROMETHEUS_OWN}  # fmt: skip
    assert not unknown, f"the dashboard reads metrics pixelmill does not export: {unknown}"
    wanted = {"pixelmill_queue_depth", "pixelmill_queue_oldest_age_seconds",
              "pixelmill_stage_seconds_bucket", "pixelmill_errors_total",
              "pixelmill_usage_cost_total"}  # fmt: skip
    assert wanted <= set(used)


def test_alert_rules_validate_and_read_only_exported_metrics(exported: set[str]) -> None:
    (rules,) = load_yaml(DEPLOY / "prometheus/alerts.yml")
    jsonschema.Draft7Validator(json.loads((SCHEMAS / "prometheus.rules.json").read_text())
                               ).validate(rules)  # fmt: skip
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert exprs
    unknown = {name for expr in exprs for name in promql_metrics(str(expr))
               if name not in exported | PROMETHEUS_OWN}  # fmt: skip
    assert not unknown, f"alerts.yml reads metrics pixelmill does not export: {unknown}"


# --- Kubernetes ---

def closed(schema: Any) -> Any:
    """A CRD schema that refuses unknown fields, as the API server's strict field validation
    does (objects with properties, unless they keep unknown fields)."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    made = {key: closed(value) for key, value in schema.items()}
    if ("properties" in made and "additionalProperties" not in made
            and not made.get("x-kubernetes-preserve-unknown-fields")):  # fmt: skip
        made["additionalProperties"] = False
    return made


CRDS = {("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject-v1alpha1.json",
        ("ray.io/v1", "RayCluster"): "kuberay-raycluster-v1.json"}  # fmt: skip


@pytest.mark.parametrize(("path", "doc"), manifests(),
                         ids=[f"{p}:{d['kind']}/{d['metadata']['name']}" for p, d in manifests()])
def test_manifest_validates_against_its_schema(path: str, doc: dict[str, Any]) -> None:
    key = (doc["apiVersion"], doc["kind"])
    if key in CRDS:
        schema = closed(json.loads((SCHEMAS / CRDS[key]).read_text()))
        jsonschema.Draft7Validator(schema).validate(doc)
        doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc["metadata"]}  # its metadata
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_crd_schemas_refuse_what_is_wrong() -> None:
    scaled = named("ScaledObject", "pixelmill-worker")
    schema = closed(json.loads((SCHEMAS / CRDS["keda.sh/v1alpha1", "ScaledObject"]).read_text()))
    wrong = json.loads(json.dumps(scaled))
    wrong["spec"]["maxReplicas"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong, schema)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**named("Deployment", "pixelmill-api"), "spek": {}},
                                     KUBERNETES_VERSIONS[0], strict=True)  # fmt: skip


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for _, doc in manifests():
        spec = doc.get("spec", {})
        if "template" in spec:
            yield doc["metadata"]["name"], spec["template"]["spec"]
        if doc["kind"] == "RayCluster":
            yield doc["metadata"]["name"] + "-head", spec["headGroupSpec"]["template"]["spec"]
            for group in spec["workerGroupSpecs"]:
                yield f"{doc['metadata']['name']}-{group['groupName']}", group["template"]["spec"]


def test_pods_run_as_non_root_with_resources() -> None:
    pods = dict(pod_specs())
    assert {"pixelmill-api", "pixelmill-worker", "pixelmill-ray-head", "pixelmill-ray-cpu",
            "pixelmill-batch-thumbs"} <= set(pods)  # fmt: skip
    for name, pod in pods.items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name
            assert container["resources"]["requests"], name
            assert container["resources"]["limits"]["memory"], name


def test_manifest_commands_are_real_commands() -> None:
    runs = {}
    for name, pod in pod_specs():
        for container in pod["containers"]:
            argv = container.get("command", image_entrypoint()) + container.get("args", [])
            if "pixelmill" not in container["image"] or name.startswith("pixelmill-ray-"):
                continue  # KubeRay gives the Ray pods their command
            for args in pixelmill_runs(argv):
                runs[name] = parse_command(args)
    assert runs["pixelmill-api"].command.name == "serve"
    assert runs["pixelmill-worker"].command.name == "worker"
    batch = runs["pixelmill-batch-thumbs"]
    assert batch.command.name == "batch"
    assert batch.params["engine"] == "ray" and batch.params["address"] == "auto"
    assert batch.params["run_id"] and batch.params["resume"]


def test_manifest_settings_are_settings() -> None:
    env = {}
    for kind, field in (("ConfigMap", "data"), ("Secret", "stringData")):
        for doc in objects(kind):
            env.update(doc[field])
    check_settings(env)
    for doc in objects("Secret"):
        for key, value in doc["stringData"].items():
            assert "change-me" in value, f"{key}: a secret here must be a placeholder"
    for _, pod in pod_specs():
        for container in pod["containers"]:
            check_settings({e["name"]: e.get("value", "") for e in container.get("env", [])})
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef")
                kind = "ConfigMap" if "configMapRef" in source else "Secret"
                assert named(kind, ref["name"])


def test_api_is_probed_on_healthz_and_served(api: Any) -> None:
    deployment = named("Deployment", "pixelmill-api")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    (args,) = pixelmill_runs(image_entrypoint() + container["args"])
    assert ports["http"] == parse_command(args).params["port"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
        assert api.get(container[probe]["httpGet"]["path"]).status_code == 200
        assert container[probe]["httpGet"]["port"] in ports
    service = named("Service", "pixelmill-api")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in ports
    worker = named("Deployment", "pixelmill-worker")
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    (args,) = pixelmill_runs(image_entrypoint() + container["args"])
    (port,) = container["ports"]
    assert port["containerPort"] == parse_command(args).params["metrics_port"]
    assert container["livenessProbe"]["httpGet"]["port"] == port["name"]


def keda_query() -> str:
    scaled = named("ScaledObject", "pixelmill-worker")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    return trigger["metadata"]["query"]


def test_keda_scales_the_worker_with_its_own_database() -> None:
    scaled = named("ScaledObject", "pixelmill-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "pixelmill-worker"
    (trigger,) = scaled["spec"]["triggers"]
    variable = trigger["metadata"]["connectionFromEnv"]
    (container,) = named("Deployment", "pixelmill-worker")["spec"]["template"]["spec"]["containers"]
    given = {key for source in container["envFrom"] if "secretRef" in source
             for key in named("Secret", source["secretRef"]["name"])["stringData"]}  # fmt: skip
    assert variable == "PIXELMILL_DB" and variable in given
    from pixelmill.jobs.queue import jobs

    names = set(re.findall(r"\b[a-z_]+\b", re.sub(r"'[^']*'", "", keda_query())))
    sql = {"select", "count", "from", "where", "and", "or", "extract", "epoch", "now"}
    assert names - sql <= {jobs.name, *jobs.columns.keys()}, names - sql - set(jobs.columns.keys())


@pytest.mark.postgres
def test_keda_query_counts_the_jobs_that_need_a_worker() -> None:
    from pixelmill.jobs.queue import JobQueue, jobs

    with postgres_schema() as url:
        queue = JobQueue(url)
        try:
            for _ in range(4):
                queue.submit({"pipeline": "thumbnail:64"})
            later = queue.submit({"pipeline": "thumbnail:64"})
            with queue.engine.begin() as db:
                db.execute(jobs.update().where(jobs.c.id == later.id)
                           .values(run_after=queue.clock.now() + 3600))  # fmt: skip
            claimed = queue.claim("w1", lease=60)
            queue.claim("w2", lease=60)
            queue.complete(claimed.id, "w1", {})
            with queue.engine.connect() as db:
                counted = db.execute(sa.text(keda_query())).scalar_one()
            depth, _ = queue.backlog()
            assert (depth, queue.counts()["running"]) == (2, 1)
            assert counted == depth + queue.counts()["running"] == 3
        finally:
            queue.close()
            queue.engine.dispose()


def test_batch_job_submits_to_the_ray_cluster() -> None:
    cluster = named("RayCluster", "pixelmill-ray")
    (container,) = named("Job", "pixelmill-batch-thumbs")["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:3] == ["ray", "job", "submit"]
    (address,) = [word.split("=", 1)[1] for word in command if word.startswith("--address=")]
    assert urlsplit(address).hostname == cluster["metadata"]["name"] + "-head-svc"
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    dashboard = {p["name"]: p["containerPort"] for p in head["ports"]}["dashboard"]
    assert urlsplit(address).port == dashboard
    images = {c["image"] for _, pod in pod_specs() for c in pod["containers"]
              if "ray" in c["image"]}  # fmt: skip
    assert len(images) == 1 and container["image"] in images
