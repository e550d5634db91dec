"""A project's settings: legato.toml, with environment variables on top."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from legato.definitions.durations import parse_duration

CONFIG_FILE = "legato.toml"
#: The environment variable naming the environment (``legato --env NAME`` sets it).
ENV_VARIABLE = "LEGATO_ENV"
#: The name of the settings outside ``[env]``, used when no environment is chosen.
DEFAULT_ENVIRONMENT = "default"
EXECUTORS = ("local", "dask")  # [executor] kind
#: The most bytes one attempt's log keeps unless [logs] max_attempt_bytes says otherwise.
DEFAULT_MAX_LOG_BYTES = 10 * 1024 * 1024


class ConfigError(Exception):
    """legato.toml is missing, malformed or holds a wrong value. The message says where."""


class WrongEnvironment(ConfigError):
    """The store (or a run) belongs to another environment than the one chosen."""


@dataclass(frozen=True)
class AuthSettings:
    """``[auth]``: how long a browser session lasts, and when repeated failures lock a name."""

    session_hours: float = 12.0  # a session ends this long after sign-in
    idle_minutes: float = 30.0  # ... or after this long without a request
    max_failures: int = 5  # failed sign-ins of one name within `failure_window_minutes`...
    failure_window_minutes: float = 15.0
    lockout_minutes: float = 15.0  # ... lock it for this long
    cookie_secure: bool | None = None  # None: Secure when served over TLS


@dataclass(frozen=True)
class LineageSettings:
    """``[lineage]``: where OpenLineage run events go (docs/lineage.md).

    ``api_key`` and ``headers`` values are kept as written: ``${secret:NAME}`` and
    ``${env:VAR}`` are resolved when an event is sent, never stored in the outbox.
    """

    transport: str  # "file" | "http"
    namespace: str  # the jobs' and datasets' namespace (default: the project's name)
    path: Path | None = None  # file: one JSON event per line
    url: str | None = None  # http: the server's base URL...
    endpoint: str = "api/v1/lineage"  # ... and the path events are POSTed to
    api_key: str | None = None  # sent as "Authorization: Bearer KEY"
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 5.0  # seconds one POST may take


@dataclass(frozen=True)
class ProjectConfig:
    """What legato.toml says, with defaults filled in and paths made absolute."""

    root: Path
    name: str
    modules: tuple[str, ...]
    database_url: str
    results_url: str
    logs_dir: Path
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES  # per attempt; 0: no cap
    executor: str = "local"  # "local" | "dask"
    workers: int = 2
    mode: str = "process"
    memory_limit_mb: int | None = None
    # [retention]: how old a finished run gets before it goes (with its task runs, events,
    # logs and results); a failed one may be kept longer. None: kept for ever.
    keep_runs: float | None = None  # seconds
    keep_failed_runs: float | None = None  # seconds; None: three times keep_runs
    # Logs and results of finished runs may go sooner than the runs (their rows stay).
    keep_logs: float | None = None  # seconds; None: as long as keep_runs
    keep_results: float | None = None  # seconds; None: as long as keep_runs
    keep_audit: float | None = None  # seconds; None: a year, or keep_runs if longer
    max_tasks_per_worker: int | None = None  # a worker is replaced after this many attempts
    max_worker_memory_mb: int | None = None  # ... or once its resident size grew by this
    lease_seconds: float = 15.0
    pools: dict[str, int] = field(default_factory=dict)  # pool name -> slots
    max_runs: int = 16  # runs the daemon drives at once
    web_host: str = "127.0.0.1"
    web_port: int = 8765
    dask_address: str | None = None  # Dask scheduler; None: a LocalCluster of `workers`
    request_bytes: int = 1024 * 1024  # an HTTP request's body at most
    params_bytes: int = 256 * 1024  # a run's params (as JSON) at most
    webhook_per_minute: int = 600  # calls one webhook answers per minute, per web process
    roles: dict[str, Any] = field(default_factory=dict)  # [roles]: custom role -> permissions
    auth: AuthSettings = field(default_factory=lambda: AuthSettings())
    tls_cert: Path | None = None  # [web]: HTTPS with this certificate (PEM) and key
    tls_key: Path | None = None
    public_url: str | None = None  # the address users reach the web server at
    # [auth.oidc] and [auth.saml] as written: legato.security reads them (OidcSettings,
    # SamlSettings), since their defaults depend on the address a request came to.
    auth_tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: [secrets] key_file: the key ring's file when LEGATO_SECRET_KEYS is not set.
    secret_key_file: Path | None = None
    #: [alerts.NAME] and [channels.NAME] as written: legato.observability reads them
    #: (alert_rules.parse_rules, channels.parse_channels).
    alert_tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    channel_tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: [resources.NAME] as written (with ``${secret:...}``/``${env:...}`` unresolved):
    #: legato.resources reads them (each table's ``kind`` names its ResourceKind).
    resource_tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The environment chosen (``--env NAME`` / LEGATO_ENV) whose [env.NAME] table was laid
    #: over the rest; "default" when none was: the settings outside [env] as they are.
    environment: str = "default"
    #: Every environment legato.toml defines: "default" and each [env.NAME].
    environments: tuple[str, ...] = ("default",)
    #: [lineage]: None when absent (no lineage event is recorded at all).
    lineage: LineageSettings | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_SECTIONS: dict[str, set[str]] = {
    "project": {"name", "modules"},
    "store": {"url"},
    "results": {"url"},
    "logs": {"dir", "max_attempt_bytes"},
    "executor": {
        "kind", "workers", "mode", "memory_limit_mb", "max_tasks_per_worker",
        "max_worker_memory_mb", "lease_seconds", "address",
    },
    "pools": set(),  # any name
    "daemon": {"max_runs", "host", "port"},
    "retention": {"runs", "failed_runs", "logs", "results", "audit"},
    "limits": {"request_bytes", "params_bytes", "webhook_per_minute"},
    "roles": set(),  # any name
    "auth": {
        "session_hours",
        "idle_minutes",
        "max_failures",
        "failure_window_minutes",
        "lockout_minutes",
        "cookie_secure",
        "oidc",
        "saml",
    },
    "web": {"tls_cert", "tls_key", "public_url"},
    "secrets": {"key_file"},
    "alerts": set(),  # any name: one table per rule
    "lineage": {"transport", "path", "url", "endpoint", "api_key", "headers", "timeout",
                "namespace"},
    "channels": set(),  # any name: one table per channel
    "resources": set(),  # any name: one table per resource
    "env": set(),  # any name: one table per environment, laid over the others
}
#: Sections whose keys are names the user chooses (a table or a value per name).
_NAMED = ("pools", "roles", "alerts", "channels", "resources", "env")
#: Sections of one table per name, each with a ``kind``: an environment naming another kind
#: for one of them replaces its table instead of merging into it.
_KINDED = ("alerts", "channels", "resources")
_ENV_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def environments(data: dict[str, Any]) -> list[str]:
    """The environments legato.toml's ``data`` defines: "default" and each ``[env.NAME]``."""
    return [DEFAULT_ENVIRONMENT, *data.get("env", {})]


def choose_environment(
    data: dict[str, Any], name: str | None, path: Path
) -> tuple[str, dict[str, Any]]:
    """The environment ``name`` (None: "default") and legato.toml's ``data`` with its
    ``[env.NAME]`` table laid over the rest, ``[env]`` itself left out.

    Tables merge key by key at every depth; any other value (a list too) replaces the one
    below. A resource, alert or channel given another ``kind`` starts afresh from the
    environment's table. ConfigError for an environment legato.toml does not define.
    """
    base = {k: v for k, v in data.items() if k != "env"}
    if name is None or name == DEFAULT_ENVIRONMENT:
        return DEFAULT_ENVIRONMENT, base
    tables = data.get("env", {})
    if name not in tables:
        import difflib

        known = environments(data)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{path}: no environment {name!r} (chosen by --env or {ENV_VARIABLE}); "
            f"known: {', '.join(known)}{hint}"
        )
    return name, overlay(base, tables[name])


def overlay(base: dict[str, Any], top: dict[str, Any], at: tuple[str, ...] = ()) -> dict[str, Any]:
    """``base`` with ``top`` laid over it (see ``choose_environment``); neither is changed."""
    out = dict(base)
    for key, value in top.items():
        below = out.get(key)
        fresh = (
            len(at) == 1
            and at[0] in _KINDED
            and isinstance(value, dict)
            and isinstance(below, dict)
            and "kind" in value
            and value["kind"] != below.get("kind")
        )
        if isinstance(value, dict) and isinstance(below, dict) and not fresh:
            out[key] = overlay(below, value, (*at, key))
        else:
            out[key] = value
    return out


def _check_environment(name: str, table: Any, path: Path) -> None:
    # Every environment is checked whichever is chosen: a typo in [env.prod] shows in dev.
    if name == DEFAULT_ENVIRONMENT:
        raise ConfigError(
            f"{path}: [env.{name}]: {name!r} is the name of the settings outside [env]; "
            "write them there, or give this environment another name"
        )
    if not _ENV_NAME.fullmatch(name):
        raise ConfigError(
            f"{path}: [env.{name}]: an environment's name is letters, digits, '-' and '_'"
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [env.{name}] must be a table")
    _check_tables(table, path, f"env.{name}.")


def _get(
    data: dict[str, Any], section: str, key: str, kind: type | tuple[type, ...], default: Any
) -> Any:
    value = data.get(section, {}).get(key, default)
    if value is default:
        return value
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{CONFIG_FILE}: [{section}] {key} must be a {names}, got {value!r}")
    return value


def load_config(root: Path, env: str | None = None) -> ProjectConfig:
    """Read ``root/legato.toml``, with the ``[env.NAME]`` table of the environment ``env``
    (else LEGATO_ENV; neither: the base settings, the "default" environment) laid over the
    rest. LEGATO_DATABASE_URL, LEGATO_RESULTS_URL, LEGATO_WORKERS, LEGATO_EXECUTOR and
    LEGATO_DASK_ADDRESS win over both."""
    root = root.resolve()
    path = root / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"no {CONFIG_FILE} in {root} (make a project with: legato init DIR)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    _check_tables(data, path, "")
    for name, table in data.get("env", {}).items():
        _check_environment(name, table, path)
    chosen = env if env is not None else os.environ.get(ENV_VARIABLE) or None
    names = environments(data)
    environment, data = choose_environment(data, chosen, path)
    try:
        config = _parse(data, root, path, environment)
    except ConfigError as exc:
        if environment == DEFAULT_ENVIRONMENT:
            raise
        raise ConfigError(f"{exc} (with [env.{environment}] laid over)") from None
    return replace(config, environments=tuple(names))


def _check_tables(data: dict[str, Any], path: Path, where: str) -> None:
    # ``where``: "" for the file's own sections, "env.NAME." for an environment's.
    for section, value in data.items():
        if section not in _SECTIONS or (where and section == "env"):
            known = [s for s in _SECTIONS if not (where and s == "env")]
            raise ConfigError(
                f"{path}: unknown section [{where}{section}] (known: {', '.join(known)})"
            )
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: [{where}{section}] must be a table")
        unknown = set(value) - _SECTIONS[section] if section not in _NAMED else set()
        if unknown:
            raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r} in [{where}{section}]")


def _parse(data: dict[str, Any], root: Path, path: Path, environment: str) -> ProjectConfig:
    modules = _get(data, "project", "modules", list, None)
    if not modules or not all(isinstance(m, str) and m for m in modules):
        raise ConfigError(
            f"{path}: [project] modules must list the pipeline modules, "
            'e.g. modules = ["pipelines"]'
        )
    name = _get(data, "project", "name", str, root.name)
    default_db = "sqlite:///" + str(root / ".legato" / "legato.db")
    db_url = os.environ.get("LEGATO_DATABASE_URL") or _get(data, "store", "url", str, default_db)
    db_url = _sqlite_relative(db_url, root)
    results = os.environ.get("LEGATO_RESULTS_URL") or _get(
        data, "results", "url", str, ".legato/results"
    )
    if "://" not in results:
        results = str((root / results).resolve())
    logs_dir = (root / _get(data, "logs", "dir", str, ".legato/logs")).resolve()
    max_log = _get(data, "logs", "max_attempt_bytes", int, DEFAULT_MAX_LOG_BYTES)
    if max_log < 0:
        raise ConfigError(f"{path}: [logs] max_attempt_bytes must be 0 (no cap) or more")
    kind = os.environ.get("LEGATO_EXECUTOR") or _get(data, "executor", "kind", str, "local")
    if kind not in EXECUTORS:
        where = f"{path}: [executor] kind"
        if os.environ.get("LEGATO_EXECUTOR"):
            where = "LEGATO_EXECUTOR"
        raise ConfigError(f"{where} {kind!r} is not available (known: {', '.join(EXECUTORS)})")
    dask_address = os.environ.get("LEGATO_DASK_ADDRESS") or _get(
        data, "executor", "address", str, None
    )
    workers = int(
        os.environ.get("LEGATO_WORKERS")
        or _get(data, "executor", "workers", int, os.cpu_count() or 2)
    )
    if workers < 1:
        raise ConfigError(f"{path}: [executor] workers must be at least 1")
    mode = _get(data, "executor", "mode", str, "process")
    if mode not in ("process", "thread"):
        raise ConfigError(f'{path}: [executor] mode must be "process" or "thread", got {mode!r}')
    mem = _get(data, "executor", "memory_limit_mb", int, 0) or None
    recycle = {
        key: _get(data, "executor", key, int, 0) or None
        for key in ("max_tasks_per_worker", "max_worker_memory_mb")
    }
    for key, limit in recycle.items():
        if limit is not None and limit < 0:
            raise ConfigError(f"{path}: [executor] {key} must be a positive number (0: none)")
    lease = float(_get(data, "executor", "lease_seconds", (int, float), 15.0))
    pools: dict[str, int] = {}
    for pool, slots in data.get("pools", {}).items():
        if not isinstance(slots, int) or isinstance(slots, bool) or slots < 1:
            raise ConfigError(
                f"{path}: [pools] {pool} must be a number of slots >= 1, got {slots!r}"
            )
        pools[pool] = slots
    keep: dict[str, float | None] = {}
    for key in ("runs", "failed_runs", "logs", "results", "audit"):
        raw = _get(data, "retention", key, str, "") or None
        try:
            keep[key] = parse_duration(raw, field=f"[retention] {key}")
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    for key in ("logs", "results"):
        window = keep[key]
        if window is not None and (keep["runs"] is None or window > keep["runs"]):
            raise ConfigError(
                f"{path}: [retention] {key} must be no longer than [retention] runs "
                "(a run's files go with it at the latest)"
            )
    if keep["audit"] is not None and keep["runs"] is None:
        raise ConfigError(f"{path}: [retention] audit needs [retention] runs as well")
    max_runs = _get(data, "daemon", "max_runs", int, 16)
    if max_runs < 1:
        raise ConfigError(f"{path}: [daemon] max_runs must be at least 1")
    port = int(os.environ.get("LEGATO_PORT") or _get(data, "daemon", "port", int, 8765))
    request_bytes = _get(data, "limits", "request_bytes", int, ProjectConfig.request_bytes)
    params_bytes = _get(data, "limits", "params_bytes", int, ProjectConfig.params_bytes)
    webhook_rate = _get(data, "limits", "webhook_per_minute", int, 600)
    for key, value in (
        ("request_bytes", request_bytes),
        ("params_bytes", params_bytes),
        ("webhook_per_minute", webhook_rate),
    ):
        if value < 1:
            raise ConfigError(f"{path}: [limits] {key} must be at least 1, got {value}")
    tls_cert, tls_key, public_url = _web(data, root, path)
    return ProjectConfig(
        roles=dict(data.get("roles", {})),
        auth=_auth(data, path),
        root=root,
        name=name,
        modules=tuple(modules),
        database_url=db_url,
        results_url=results,
        logs_dir=logs_dir,
        max_log_bytes=max_log,
        executor=kind,
        workers=workers,
        mode=mode,
        memory_limit_mb=mem,
        keep_runs=keep["runs"],
        keep_failed_runs=keep["failed_runs"],
        keep_logs=keep["logs"],
        keep_results=keep["results"],
        keep_audit=keep["audit"],
        max_tasks_per_worker=recycle["max_tasks_per_worker"],
        max_worker_memory_mb=recycle["max_worker_memory_mb"],
        lease_seconds=lease,
        pools=pools,
        max_runs=max_runs,
        web_host=_get(data, "daemon", "host", str, "127.0.0.1"),
        web_port=port,
        dask_address=dask_address or None,
        request_bytes=request_bytes,
        params_bytes=params_bytes,
        webhook_per_minute=webhook_rate,
        tls_cert=tls_cert,
        tls_key=tls_key,
        public_url=public_url,
        auth_tables=_auth_tables(data, path),
        secret_key_file=(root / _get(data, "secrets", "key_file", str, ".legato/secret.keys"))
        .resolve(),
        alert_tables=_named_tables(data, "alerts", path),
        channel_tables=_named_tables(data, "channels", path),
        resource_tables=_named_tables(data, "resources", path),
        environment=environment,
        lineage=_lineage(data, root, path, name),
    )


def _lineage(data: dict[str, Any], root: Path, path: Path, project: str) -> LineageSettings | None:
    if "lineage" not in data:
        return None
    transport = _get(data, "lineage", "transport", str, "")
    where = f"{path}: [lineage]"
    if transport not in ("file", "http"):
        raise ConfigError(f'{where} transport must be "file" or "http", got {transport!r}')
    file = _get(data, "lineage", "path", str, None)
    url = _get(data, "lineage", "url", str, None)
    if transport == "file" and not file:
        raise ConfigError(f'{where} needs path (the file events are appended to) for "file"')
    if transport == "http" and not url:
        raise ConfigError(f'{where} needs url (e.g. "http://localhost:5000") for "http"')
    headers = _get(data, "lineage", "headers", dict, {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise ConfigError(f"{where} headers must map names to text")
    timeout = float(_get(data, "lineage", "timeout", (int, float), 5.0))
    if timeout <= 0:
        raise ConfigError(f"{where} timeout must be positive")
    return LineageSettings(
        transport=transport,
        namespace=_get(data, "lineage", "namespace", str, project) or project,
        path=(root / file).resolve() if file else None,
        url=url,
        endpoint=_get(data, "lineage", "endpoint", str, "api/v1/lineage").lstrip("/"),
        api_key=_get(data, "lineage", "api_key", str, None),
        headers=dict(headers),
        timeout=timeout,
    )


def _named_tables(data: dict[str, Any], section: str, path: Path) -> dict[str, dict[str, Any]]:
    # [alerts.NAME] / [channels.NAME]: each entry a table; its keys are checked by its reader.
    tables = data.get(section, {})
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{section}.{name}] must be a table")
    return {name: dict(table) for name, table in tables.items()}


def _web(
    data: dict[str, Any], root: Path, path: Path
) -> tuple[Path | None, Path | None, str | None]:
    # [web]: the certificate and key go together; the public URL is an origin, nothing more.
    from urllib.parse import urlsplit

    cert = _get(data, "web", "tls_cert", str, None)
    key = _get(data, "web", "tls_key", str, None)
    if (cert is None) != (key is None):
        raise ConfigError(f"{path}: [web] tls_cert and tls_key go together: give both or neither")
    public = _get(data, "web", "public_url", str, None)
    if public is not None:
        parts = urlsplit(public)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
        ):
            raise ConfigError(
                f"{path}: [web] public_url must be an origin such as "
                f'"https://legato.example.com" (scheme, host, optional port), got {public!r}'
            )
        public = f"{parts.scheme}://{parts.netloc}"
    return (
        None if cert is None else (root / cert).resolve(),
        None if key is None else (root / key).resolve(),
        public,
    )


def _auth(data: dict[str, Any], path: Path) -> AuthSettings:
    d = AuthSettings()
    number = (int, float)
    out = AuthSettings(
        session_hours=float(_get(data, "auth", "session_hours", number, d.session_hours)),
        idle_minutes=float(_get(data, "auth", "idle_minutes", number, d.idle_minutes)),
        max_failures=_get(data, "auth", "max_failures", int, d.max_failures),
        failure_window_minutes=float(
            _get(data, "auth", "failure_window_minutes", number, d.failure_window_minutes)
        ),
        lockout_minutes=float(_get(data, "auth", "lockout_minutes", number, d.lockout_minutes)),
        cookie_secure=_get(data, "auth", "cookie_secure", bool, d.cookie_secure),
    )
    for key in ("session_hours", "idle_minutes", "failure_window_minutes", "lockout_minutes"):
        if getattr(out, key) <= 0:
            raise ConfigError(f"{path}: [auth] {key} must be more than 0")
    if out.max_failures < 1:
        raise ConfigError(f"{path}: [auth] max_failures must be at least 1")
    return out


def _auth_tables(data: dict[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    for kind in ("oidc", "saml"):
        table = data.get("auth", {}).get(kind)
        if table is None:
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [auth.{kind}] must be a table")
        tables[kind] = table
    return tables


def _sqlite_relative(url: str, root: Path) -> str:
    # sqlite:///relative/path is relative to the project, not to the shell's folder.
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str((root / url[len(prefix) :]).resolve())
    return url
