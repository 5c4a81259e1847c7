"""Releases declared beside the code: ``[[release]]`` tables in ``mpack.toml`` (or ``[[tool.mpack.release]]`` in
``pyproject.toml``). Every key is checked here, once, so a typo never releases with a default: unknown keys are
refused naming the known ones, values are typed, durations read ("15m", "1h30m", "90s")."""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from mpack.infra.errors import MpackError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")  # goes into the registry's tag keys
DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
# build options a release may set, as `mpack build` spells them -> BuildOptions field
BUILD_KEYS = {
    "target": "target", "env-manager": "env_manager", "python": "python", "arch": "arch", "runtime": "runtime", "precision": "precision", "tolerance": "tolerance", "lambda-http": "lambda_http",
    "allow-pickle": "allow_pickle", "auth": "auth", "instance-memory": "instance_memory_mb",
}  # fmt: skip
# deploy options, as `mpack deploy` spells them -> DeploySettings field (AWS) / AzureSettings field (Azure)
DEPLOY_KEYS = {
    "alias": "alias", "memory": "memory_mb", "timeout": "timeout_s", "role": "role", "env": "environment", "reserved": "reserved", "provisioned": "provisioned",
    "function-url": "function_url", "bucket": "bucket", "repository": "repository", "region": "region", "smoke-test": "smoke_test", "snapstart": "snapstart",
    "app": "app", "resource-group": "resource_group", "subscription": "subscription", "storage-connection-string": "storage_connection_string", "package-container": "package_container",
}  # fmt: skip
GATE_KEYS = ("max-error-rate", "max-p99-ms", "max-p99-ratio")
COMMON_KEYS = ("name", "model", "platform", "canary", "bake", "tracking-uri", "registry-uri", *GATE_KEYS, "target", "env-manager", "python", "runtime", "precision", "tolerance", "allow-pickle", "smoke-test")


@dataclass(frozen=True)
class PlatformKeys:
    """One platform's own keys, all checked here: which it needs, which it takes besides the common ones, their choices and
    defaults, and the keys that name where it deploys (two releases there would undo each other)."""

    required: tuple
    own: tuple
    choices: dict
    defaults: dict
    place: tuple
    shown: str  # the place in words, from the values of ``place``
    example: str

    def place_of(self, values: dict) -> tuple[tuple, str]:
        """(what two releases may not share, the same in words)."""
        given = {k: values.get(k, self.defaults.get(k)) for k in self.place}
        return tuple(given.values()), self.shown.format_map(given)


PLATFORM_KEYS = {
    "aws": PlatformKeys(
        required=("function",),
        own=("function", "arch", "lambda-http", "alias", "memory", "timeout", "role", "env", "reserved", "provisioned", "function-url", "bucket", "repository", "region", "snapstart"),
        choices={"smoke-test": ("aws", "local", "none"), "function-url": ("none", "iam", "public"), "target": ("lambda", "lambda-image")},
        defaults={"target": "lambda", "alias": "live"},
        place=("function", "alias", "region"),
        shown="{function}:{alias}",
        example='function = "fraud"',
    ),
    "azure": PlatformKeys(
        required=("app", "resource-group"),
        own=("app", "resource-group", "subscription", "storage-connection-string", "package-container", "auth", "instance-memory"),
        choices={"smoke-test": ("local", "none"), "target": ("azure",), "auth": ("function", "anonymous", "admin"), "instance-memory": (512, 2048, 4096)},
        defaults={"target": "azure"},
        place=("subscription", "resource-group", "app"),
        shown="{resource-group}/{app}",
        example='app = "fraud-scoring", resource-group = "ml-serving"',
    ),
}
PLATFORMS = tuple(PLATFORM_KEYS)
RELEASE_KEYS = tuple(dict.fromkeys([*COMMON_KEYS, *(key for keys in PLATFORM_KEYS.values() for key in keys.own)]))
TYPES = {
    "memory": int, "timeout": int, "reserved": int, "provisioned": int, "canary": float, "tolerance": float, "snapstart": bool, "allow-pickle": bool, "max-error-rate": float, "max-p99-ms": float,
    "max-p99-ratio": float, "instance-memory": int,
}  # fmt: skip
DEFAULT_BAKE_S = 600
INGESTION_S = 60


@dataclass(frozen=True)
class Gates:
    """A canary is promoted after its bake when its error rate and p99 latency stay within these; the defaults are
    stated in docs/sync.md. A canary that received no request during the bake passes (as CodeDeploy's alarms do)."""

    max_error_rate: float = 1.0  # percent of the canary's invocations
    max_p99_ms: float | None = None  # absolute bound, when given
    max_p99_ratio: float = 1.5  # the canary's p99 at most this times the stable version's (when the stable one had traffic)


@dataclass(frozen=True)
class Release:
    name: str
    model: str  # models:/NAME@ALIAS (the alias decides) or models:/NAME/VERSION (pinned)
    platform: str
    function: str | None  # AWS: the Lambda function (None on other platforms)
    canary: float | None  # percent; None: all at once
    bake_s: int
    gates: Gates
    build: dict = field(default_factory=dict)  # BuildOptions fields
    deploy: dict = field(default_factory=dict)  # the platform's deploy settings (DeploySettings / AzureSettings fields)
    tracking_uri: str | None = None
    registry_uri: str | None = None
    place: str = ""  # where it deploys, in words: "fraud:live", "ml-serving/fraud-scoring"
    place_key: tuple = ()  # the same, as two releases may not share it

    @property
    def model_name(self) -> str:
        return _model_reference(self.model)[0]

    @property
    def reference(self) -> str:
        """``@champion`` or ``3``."""
        return _model_reference(self.model)[1]

    @property
    def alias(self) -> str:
        return self.deploy.get("alias", "live")

    @property
    def ingestion_s(self) -> int:
        """Time after the bake for the platform's last figures to arrive (CloudWatch's take a minute or two)."""
        return min(INGESTION_S, self.bake_s)


def load_releases(path: Path | None = None, folder: Path | None = None) -> tuple[list[Release], Path]:
    """The releases of ``path``, else of mpack.toml / pyproject.toml in ``folder``."""
    candidates = [path] if path else [(folder or Path.cwd()) / "mpack.toml", (folder or Path.cwd()) / "pyproject.toml"]
    for candidate in candidates:
        if not candidate.is_file():
            if path:
                raise MpackError(f"{path} does not exist", "pass the file that declares the releases ([[release]] tables)")
            continue
        tables = _release_tables(candidate)
        if tables is None:
            continue
        releases = [parse_release(table, f"{candidate}: release {index + 1}") for index, table in enumerate(tables)]
        names = [r.name for r in releases]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise MpackError(f"{candidate}: release name {', '.join(duplicated)} is used twice", "each release needs its own name: it keys the registry's tags and the lease")
        places = [(r.platform, r.place_key) for r in releases]
        shared = sorted({r.place for r in releases if places.count((r.platform, r.place_key)) > 1})
        if shared:
            raise MpackError(f"{candidate}: two releases deploy to {', '.join(shared)}", "each release needs its own function or alias (Azure: its own app): two would undo each other on every sync")
        return releases, candidate
    raise MpackError("no releases declared", "add [[release]] tables to mpack.toml (or [[tool.mpack.release]] to pyproject.toml), or pass --config FILE; see docs/sync.md")


def _release_tables(path: Path) -> list | None:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise MpackError(f"{path} is not valid TOML: {exc}", "fix the file") from None
    tables = data.get("release") if path.name != "pyproject.toml" else data.get("tool", {}).get("mpack", {}).get("release")
    if tables is None:
        return None
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables) or not tables:
        raise MpackError(f"{path}: release must be an array of tables", "write each release as a [[release]] table")
    return tables


def parse_release(table: dict, where: str) -> Release:
    unknown = sorted(set(table) - set(RELEASE_KEYS))
    if unknown:
        raise MpackError(f"{where}: unknown key(s) {', '.join(unknown)}", f"known keys: {', '.join(RELEASE_KEYS)}")
    values = {key: _typed(key, value, where) for key, value in table.items()}
    platform = values.get("platform", "aws")
    if platform not in PLATFORM_KEYS:
        raise MpackError(f"{where}: platform {platform!r} cannot be synced", f"one of {', '.join(PLATFORMS)}")
    keys = PLATFORM_KEYS[platform]
    for key in ("name", "model", *keys.required):
        if not values.get(key):
            raise MpackError(f"{where}: {key} is missing" + (f" (a release on {platform} needs {', '.join(keys.required)})" if key in keys.required else ""), f'e.g. name = "fraud-prod", model = "models:/fraud@champion", {keys.example}')
    foreign = sorted(set(values) - set(COMMON_KEYS) - set(keys.own))
    if foreign:
        owners = sorted({p for p, k in PLATFORM_KEYS.items() if set(foreign) & set(k.own)})
        raise MpackError(f"{where}: {', '.join(foreign)} {'is' if len(foreign) == 1 else 'are'} for {' and '.join(owners)} releases, not {platform}", f"a release on {platform} takes: {', '.join(dict.fromkeys([*COMMON_KEYS, *keys.own]))}")
    name = values["name"]
    if not NAME.match(name):
        raise MpackError(f"{where}: release name {name!r} is not usable", "letters, digits, - and _ (at most 63), starting with a letter or digit")
    where = f"{where} ({name})"
    _model_reference(values["model"], where)
    canary = values.get("canary")
    if canary is not None and not 0 < canary < 100:
        raise MpackError(f"{where}: canary = {canary:g} is not a percentage between 0 and 100", "e.g. canary = 10; omit it to release all at once")
    bake = parse_duration(values["bake"], f"{where}: bake") if "bake" in values else DEFAULT_BAKE_S
    gates = Gates(**{key.replace("-", "_"): values[key] for key in GATE_KEYS if key in values})
    bounds = [gates.max_error_rate, gates.max_p99_ratio, *([gates.max_p99_ms] if gates.max_p99_ms is not None else [])]
    if not all(math.isfinite(b) for b in bounds) or gates.max_error_rate < 0 or (gates.max_p99_ms is not None and gates.max_p99_ms <= 0) or gates.max_p99_ratio <= 0:
        raise MpackError(f"{where}: gates must be positive (max-error-rate in percent, max-p99-ms in ms, max-p99-ratio a factor)", "e.g. max-error-rate = 1, max-p99-ratio = 1.5")
    _check_choices(values, keys, where)
    deploy = {DEPLOY_KEYS[key]: value for key, value in values.items() if key in DEPLOY_KEYS}
    if isinstance(deploy.get("environment"), dict):
        deploy["environment"] = tuple(f"{k}={v}" for k, v in deploy["environment"].items())
    build = {BUILD_KEYS[key]: value for key, value in values.items() if key in BUILD_KEYS}
    build.setdefault("target", keys.defaults["target"])
    place_key, place = keys.place_of(values)
    return Release(
        name=name,
        model=values["model"],
        platform=platform,
        function=values.get("function"),
        canary=canary,
        bake_s=bake,
        gates=gates,
        build=build,
        deploy=deploy,
        tracking_uri=values.get("tracking-uri"),
        registry_uri=values.get("registry-uri"),
        place=place,
        place_key=place_key,
    )


RESERVED_ALIASES = ("mpack-sync-lease",)  # the lease's own alias


def _check_choices(values: dict, keys: PlatformKeys, where: str) -> None:
    """What would otherwise fail only after a build, on every sync: each platform's own choices."""
    for key, allowed in keys.choices.items():
        if key in values and values[key] not in allowed:
            raise MpackError(f"{where}: {key} = {values[key]!r} is not one of {', '.join(map(str, allowed))}", f"e.g. {key} = {allowed[0]!r}")
    if values.get("alias") in RESERVED_ALIASES:
        raise MpackError(f"{where}: alias {values['alias']!r} is the name of mpack sync's lease", "name the serving alias otherwise, e.g. live")


def parse_duration(text, where: str) -> int:
    """Seconds from "15m", "1h30m", "90s" or a number of seconds."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    if isinstance(text, str) and text.strip().isdigit():
        return int(text.strip())
    match = DURATION.match(str(text).strip()) if str(text).strip() else None
    if not match:
        raise MpackError(f"{where} = {text!r} is not a duration", 'write it as "15m", "1h30m", "90s" or a number of seconds')
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _typed(key: str, value, where: str):
    wanted = TYPES.get(key, str)
    if key == "env":
        if isinstance(value, dict) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return value
        raise MpackError(f"{where}: env must be a table or a list of KEY=VALUE", 'e.g. env = { LOG_LEVEL = "INFO" }')
    if key == "bake":
        return value
    if wanted is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
        raise MpackError(f"{where}: {key} = {value!r} is not {_article(wanted)}", f"give {key} as {_article(wanted)}")
    return value


def _article(kind: type) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[kind]


def _model_reference(model: str, where: str = "release") -> tuple[str, str]:
    """(name, "@alias" or "version") of models:/NAME@ALIAS or models:/NAME/VERSION."""
    rest = model[len("models:/") :] if model.startswith("models:/") else ""
    if "@" in rest and "/" not in rest:
        name, alias = rest.split("@", 1)
        if name and alias:
            return name, "@" + alias
    elif rest.count("/") == 1 and rest.split("/")[1].isdigit() and rest.split("/")[0]:
        name, version = rest.split("/")
        return name, str(int(version))  # 03 is version 3
    raise MpackError(f"{where}: model = {model!r} is not a registered model", "a release follows the registry: models:/NAME@ALIAS (or models:/NAME/VERSION to pin one)")
