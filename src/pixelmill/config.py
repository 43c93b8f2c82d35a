"""Settings: safety limits and defaults, from a TOML file and ``PIXELMILL_*`` environment variables.

A frozen dataclass rather than pydantic-settings: importing pydantic costs about 170 ms, more than
a whole 24 MP thumbnail, and the command line pays it on every call. The few fields here need only
type conversion, which the dataclass field types drive.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from pixelmill.errors import UsageError

ENV_PREFIX = "PIXELMILL_"
CONFIG_ENV = "PIXELMILL_CONFIG"
FAIL_ON = ("none", "truncated", "error", "warning")
PRICES = ("cost_cpu_hour", "cost_gpu_hour", "cost_gb_stored_month", "cost_gb_egress",
          "cost_request")  # fmt: skip
"""The settings of the price table (``[pixelmill.cost]``)."""
DEFAULT_MAX_MEMORY = 1024**3
MEMORY_MARGIN = 256 * 1024**2
"""Bytes a process may hold beyond ``max_memory`` per image in progress (over what it held
before they started) before its images are stopped: libvips' and the allocator's own
overhead, thread stacks, the encoder's buffers."""


def machine_memory() -> int | None:
    """Bytes of memory this process's machine has: the physical memory, or the control
    group's limit where one is set and lower (a container's); None where neither can be read."""
    try:
        found = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        found = None
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(limit, encoding="ascii") as handle:
                value = int(handle.read().strip())
        except (OSError, ValueError):
            continue
        found = value if found is None else min(found, value)
    return found


def default_max_memory() -> int:
    """1 GiB, or a quarter of the machine's memory where that is less."""
    machine = machine_memory()
    return DEFAULT_MAX_MEMORY if machine is None else min(DEFAULT_MAX_MEMORY, machine // 4)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Limits and defaults shared by every face of pixelmill."""

    max_pixels: int = 1_000_000_000
    """Largest input accepted, in pixels (width × height), checked from the header before decoding."""
    max_output_pixels: int = 4_000_000_000
    """Largest output accepted, in pixels, checked before anything is computed."""
    max_bytes: int = 4 * 1024**3
    """Largest input file accepted, in bytes."""
    time_limit: float = 600.0
    """Seconds one image may take from its header read to the last byte written (building the
    graph included)."""
    max_memory: int = dataclasses.field(default_factory=default_max_memory)
    """Bytes one image's work may hold (default: 1 GiB or a quarter of the machine's memory,
    whichever is smaller). The tiled executor plans its tiles and batches within half of it.
    Decoders that need the whole image at once (progressive
    JPEG, interlaced PNG, GIF, WebP, HEIF/AVIF) are refused from the header past it, and a
    process whose resident memory grows past it (per image in progress, plus
    ``MEMORY_MARGIN``) stops its images; a job's process is killed."""
    autorotate: bool = True
    """Apply the EXIF orientation when loading."""
    fail_on: str = "warning"
    """How strict decoding is: none, truncated, error or warning (libvips ``fail_on``); what
    each lets through is in the README."""
    tmp_dir: str | None = None
    """Folder for spool files (remote destinations, model outputs; default: the system's)."""
    models_dir: str | None = None
    """Folder of user models (default: the data folder's models/)."""
    threads: int = 0
    """Threads for model inference (0: every core)."""
    data_dir: str | None = None
    """Folder of the service's data (default: $XDG_DATA_HOME/pixelmill): the job database."""
    db: str | None = None
    """Job database URL: sqlite:///… or postgresql://… (default: SQLite in data_dir)."""
    storage: str | None = None
    """The service's storage, a folder or URL such as s3://bucket/prefix, for uploads and
    outputs (default: files/ in data_dir)."""
    signing_keys: str | None = None
    """Secrets of on-demand image URLs, comma-separated: the first signs, all verify."""
    sources: str | None = None
    """Prefixes on-demand images may come from, comma-separated (default: the storage)."""
    allow_private_hosts: bool = False
    """Let on-demand http(s) sources and webhooks reach loopback, link-local or private
    addresses."""
    webhook_secret: str | None = None
    """Key of the HMAC-SHA256 signature of webhook calls (unsigned without it)."""
    preload: str | None = None
    """Models a worker loads when it starts, comma-separated (others load on first use)."""
    max_upload_bytes: int = 1024**3
    """Largest request body the API accepts (uploads), in bytes; API keys may set less."""
    render_cache: bool = True
    """Keep on-demand renders in the storage's cache/ and serve repeats from there."""
    render_dataset: str | None = None
    """Dataset that remembers every on-demand render (its source, output and pipeline; not
    the repeats served from the cache). Off by default: recording reads both images again."""
    job_attempts: int = 5
    """Attempts of a job before it is dead, when its storage fails or its process dies."""
    job_backoff: float = 2.0
    """Seconds before a job's (or a webhook call's) first retry; each next wait doubles, up to
    five minutes."""
    cost_cpu_hour: float = 0.0
    """Price of an hour of CPU time (``[pixelmill.cost] cpu_hour`` in the file, or
    ``PIXELMILL_COST_CPU_HOUR``); the prices turn recorded usage into money (docs/usage.md)."""
    cost_gpu_hour: float = 0.0
    """Price of an hour of GPU time (``cost.gpu_hour``)."""
    cost_gb_stored_month: float = 0.0
    """Price of a gigabyte (10⁹ bytes) stored for a month (``cost.gb_stored_month``): each byte
    written is charged one month."""
    cost_gb_egress: float = 0.0
    """Price of a gigabyte served (``cost.gb_egress``)."""
    cost_request: float = 0.0
    """Price of one piece of work: a job attempt, an on-demand render, a batch item
    (``cost.request``)."""
    budget_webhook: str | None = None
    """URL that is POSTed (signed like job webhooks) when an API key reaches 80 % and 100 % of
    its monthly budget."""

    @property
    def data_folder(self) -> str:
        if self.data_dir:
            return self.data_dir
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"),
                                                               ".local/share")  # fmt: skip
        return os.path.join(base, "pixelmill")

    @property
    def storage_root(self) -> str:
        return self.storage or os.path.join(self.data_folder, "files")

    @property
    def job_database(self) -> str:
        """The job database URL, its default folder made when missing."""
        if self.db:
            return self.db
        os.makedirs(self.data_folder, exist_ok=True)
        return "sqlite:///" + os.path.join(self.data_folder, "jobs.db")

    def __post_init__(self) -> None:
        if self.threads < 0:
            raise UsageError(f"setting threads must be 0 (every core) or more, not {self.threads}")
        for name in ("max_pixels", "max_output_pixels", "max_bytes", "time_limit",
                     "max_upload_bytes", "max_memory", "job_attempts", "job_backoff"):
            if getattr(self, name) <= 0:
                raise UsageError(f"setting {name} must be positive, not {getattr(self, name)}")
        for name in PRICES:
            if getattr(self, name) < 0:
                raise UsageError(f"setting {_shown(name)} must be 0 or more, not "
                                 f"{getattr(self, name)}")  # fmt: skip
        if self.fail_on not in FAIL_ON:
            raise UsageError(f"setting fail_on {self.fail_on!r} is not one of {', '.join(FAIL_ON)}")

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (``None`` values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def load(cls, config_file: str | os.PathLike[str] | None = None) -> Settings:
        """Defaults, overridden by the TOML file (``--config`` or ``PIXELMILL_CONFIG``), then by
        ``PIXELMILL_*`` environment variables."""
        values: dict[str, Any] = {}
        path = config_file or os.environ.get(CONFIG_ENV)
        if path:
            values.update(_read_toml(os.fspath(path)))
        for field in dataclasses.fields(cls):
            raw = os.environ.get(ENV_PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = _convert(field.name, field.type, raw)
        return cls(**values)


def _read_toml(path: str) -> dict[str, Any]:
    import tomllib

    try:
        with open(path, encoding="utf-8") as handle:
            data = tomllib.loads(handle.read())
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None
    table = _flat(data.get("pixelmill", data))
    known = {f.name: f.type for f in dataclasses.fields(Settings)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise UsageError(f"config file {path}: unknown setting {_shown(unknown[0])!r}; "
                         f"known: {', '.join(map(_shown, known))}")  # fmt: skip
    return {k: _convert(_shown(k), known[k], v) for k, v in table.items()}


def _flat(table: dict[str, Any]) -> dict[str, Any]:
    """A table's settings with those of its sub-tables (``[pixelmill.cost]``, or the dotted
    keys ``cost.cpu_hour``) named ``cost_cpu_hour``, as their fields and environment
    variables are."""
    flat: dict[str, Any] = {}
    for name, value in table.items():
        if isinstance(value, dict):
            flat.update({f"{name}_{k}": v for k, v in _flat(value).items()})
        else:
            flat[name] = value
    return flat


def _shown(name: str) -> str:
    """A setting's name as the file spells it (``cost.cpu_hour``)."""
    return name.replace("_", ".", 1) if name.startswith("cost_") else name


def _convert(name: str, type_name: Any, raw: Any) -> Any:
    """Convert a TOML or environment value to the field's type (annotations are strings here)."""
    text = str(raw).strip().replace("_", "")
    try:
        if isinstance(raw, bool) and type_name != "bool":
            raise ValueError(text)
        if type_name == "int":
            return int(raw) if isinstance(raw, int) else int(text)
        if type_name == "float":
            return float(raw) if isinstance(raw, int | float) else float(text)
        if type_name == "bool":
            if isinstance(raw, bool):
                return raw
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if not isinstance(raw, str):
            raise ValueError(text)  # noqa: TRY004  # any wrong value ends as the usage error below
    except ValueError:
        raise UsageError(f"setting {name}: {raw!r} is not a valid {type_name}") from None
    return raw or None
