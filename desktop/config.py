"""Settings: one frozen value, read with one precedence order.

command line > environment > settings file (TOML, in the user's config folder) > defaults.

The app changes the settings file itself only when the user makes a choice in the app (the model
folder chosen at the first run): `save_setting` sets that one key and keeps the rest of the file,
comments included, as the user wrote it.

`MODEL`, `BASE_URL` and `API_KEY` keep the names the Foundry Local samples use; every other
setting reads `FOUNDRY_DESK_<NAME>`. A settings file that cannot be read or parsed is moved aside
as a backup and the defaults are used: the user is told, nothing crashes, nothing is lost.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import tomlkit
import tomlkit.exceptions

from desktop.errors import FoundryDeskError
from desktop.files import set_aside, write_text_atomic

ENV_PREFIX = "FOUNDRY_DESK_"
DEFAULT_MODEL = "phi-4-mini"
DEFAULT_RUNTIME_PORT = 5282
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_OPEN_WEBUI_PORT = 3000
DEFAULT_OPEN_WEBUI_IMAGE = "ghcr.io/open-webui/open-webui:main"
OPEN_WEBUI_BACKENDS = ("auto", "docker", "pip")
DEFAULT_CHAT_PORT = 5283
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant running privately on the user's computer."
ROUTING_POLICIES = ("local-only", "local-first", "rules")
TASK_TYPES = ("chat", "code", "long")


class SettingsError(FoundryDeskError, ValueError):
    """A setting from the command line or the environment has a value we cannot use."""


def _env(name: str) -> dict[str, str]:
    return {"env": name}


@dataclass(frozen=True)
class Settings:
    """Everything a user can configure. Changing a setting makes a new value (`replace`)."""

    model: str = field(default=DEFAULT_MODEL, metadata=_env("MODEL"))
    """Catalog alias (e.g. `phi-4-mini`) or id of the model to serve."""
    model_path: Path | None = None
    """A model folder of your own (ONNX Runtime GenAI format); served instead of `model`."""
    embedding_model: str | None = None
    """An embedding model (catalog alias or id, downloaded; or a model folder) the runtime serves
    beside the chat model: the chat then finds passages of your files by meaning too (hybrid)."""
    base_url: str | None = field(default=None, metadata=_env("BASE_URL"))
    """Use this OpenAI-compatible endpoint as it is, and host no runtime (attach mode)."""
    api_key: str = field(default="local", metadata=_env("API_KEY"))
    """Key sent to the endpoint; the built-in runtime ignores it."""
    runtime_port: int = DEFAULT_RUNTIME_PORT
    """Pinned port of the built-in runtime; a free one is used when it is busy (0: always free)."""
    allow_download: bool = True
    """Download the model when it is not cached. Off: nothing ever leaves the machine."""
    offline: bool = False
    """Offline mode: no network at all, from start to quit: no catalog, no download, no DNS lookup,
    no remote endpoint. Only downloaded models and model folders are offered."""
    use_foundry_service: bool = False
    """Attach to a running Foundry Local app service, when one is found, instead of hosting."""
    model_cache_dir: Path | None = None
    """Where models are kept; default: the Foundry Local app's cache if found, else ours."""
    log_level: str = "info"
    """One of debug, info, warning, error."""
    restart_limit: int = 3
    """How many restarts of a crashing service are allowed within `restart_window_s`."""
    restart_window_s: float = 600.0
    """The window for `restart_limit`; past the limit the service is marked failed."""
    open_webui_port: int = DEFAULT_OPEN_WEBUI_PORT
    """Port of Open WebUI on 127.0.0.1; a free one is used when it is busy."""
    open_webui_backend: str = "auto"
    """How to run Open WebUI: docker, pip (an installed `open-webui` command), or auto."""
    open_webui_image: str = DEFAULT_OPEN_WEBUI_IMAGE
    """The Docker image; never pulled by the app (offline-first): `docker pull` it yourself."""
    open_webui_command: str = "open-webui"
    """The `open-webui` executable for the pip backend: a name on PATH or a full path."""
    chat_port: int = DEFAULT_CHAT_PORT
    """Port of the chat (Chainlit) on 127.0.0.1; a free one is used when it is busy."""
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    """The system message at the start of every conversation ("" for none)."""
    temperature: float = 0.7
    """Sampling temperature of chat answers (0 to 2); the chat's settings panel changes it per chat."""
    max_tokens: int = 1024
    """Most tokens one answer may have; less when the conversation leaves less room in the context."""
    remote_base_url: str | None = None
    """A second, remote OpenAI-compatible endpoint (e.g. Azure OpenAI) for hybrid routing."""
    remote_api_key: str = ""
    """Key sent to `remote_base_url`."""
    remote_model: str | None = None
    """Model (or Azure deployment) to ask at `remote_base_url`."""
    routing: str = "local-only"
    """local-only (nothing ever leaves the machine), local-first (remote when the local model
    fails or the prompt does not fit), or rules (task types in `remote_tasks` go remote)."""
    remote_tasks: str = "code,long"
    """With routing = rules: comma-separated task types answered remotely (chat, code, long)."""

    def __post_init__(self) -> None:
        for name in ("runtime_port", "open_webui_port", "chat_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise SettingsError(f"{name} must be between 0 and 65535, not {port}")
        if self.open_webui_backend not in OPEN_WEBUI_BACKENDS:
            raise SettingsError(f"open_webui_backend must be one of {', '.join(OPEN_WEBUI_BACKENDS)}")
        if self.log_level not in LOG_LEVELS:
            raise SettingsError(f"log_level must be one of {', '.join(LOG_LEVELS)}, not {self.log_level!r}")
        if self.restart_limit < 0 or self.restart_window_s <= 0:
            raise SettingsError("restart_limit must be >= 0 and restart_window_s > 0")
        if not 0 <= self.temperature <= 2:
            raise SettingsError(f"temperature must be between 0 and 2, not {self.temperature}")
        if self.max_tokens < 1:
            raise SettingsError(f"max_tokens must be at least 1, not {self.max_tokens}")
        if self.routing not in ROUTING_POLICIES:
            raise SettingsError(f"routing must be one of {', '.join(ROUTING_POLICIES)}, not {self.routing!r}")
        unknown = set(self.remote_task_list) - set(TASK_TYPES)
        if unknown:
            raise SettingsError(f"remote_tasks: unknown task types {sorted(unknown)}; use {TASK_TYPES}")

    @property
    def remote_task_list(self) -> tuple[str, ...]:
        return tuple(t.strip() for t in self.remote_tasks.split(",") if t.strip())


@dataclass(frozen=True)
class LoadedSettings:
    """Settings plus what the user should be told about how they were read."""

    settings: Settings
    notices: tuple[str, ...] = ()


def env_name(name: str) -> str:
    """The environment variable that sets the field `name`."""
    for item in dataclasses.fields(Settings):
        if item.name == name:
            return str(item.metadata.get("env", ENV_PREFIX + name.upper()))
    raise KeyError(name)


def load_settings(
    settings_file: Path,
    environ: Mapping[str, str] | None = None,
    cli: Mapping[str, Any] | None = None,
) -> LoadedSettings:
    """Read the settings; raises `SettingsError` only for bad command-line or environment values."""
    notices: list[str] = []
    from_file = _read_file(settings_file, notices)
    from_env = _environment_values(os.environ if environ is None else environ)
    from_cli = {key: value for key, value in (cli or {}).items() if value is not None}

    file_values = _coerce_file_values(from_file, settings_file, notices)
    explicit = {
        **_coerce_all(from_env, env_name),
        **_coerce_all(from_cli, lambda key: "--" + key.replace("_", "-")),
    }
    return LoadedSettings(Settings(**ChainMap(explicit, file_values)), tuple(notices))


def save_setting(settings_file: Path, name: str, value: str | Path | bool | int | float | None) -> None:
    """Set one setting in the settings file (None removes it), as a user editing it would: their
    comments, order and other keys stay (tomlkit keeps the file's formatting). Written atomically:
    a reader, or a crash, sees the old file or the new one.

    Raises `SettingsError` for a value `name` cannot take, or a file that is not valid TOML (it
    is left as it is); `OSError` when the file cannot be read or written.
    """
    if value is not None:
        Settings(**{name: coerce(name, str(value) if isinstance(value, Path) else value)})
    path = settings_file.resolve()  # a link (say, to the user's dotfiles) keeps pointing there
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    try:
        document = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as error:
        raise SettingsError(f"{settings_file} is not valid TOML ({error}); it was left as it is.") from None
    if value is None:
        document.pop(name, None)
    else:
        document[name] = str(value) if isinstance(value, Path) else value
    write_text_atomic(path, tomlkit.dumps(document))


def _environment_values(environ: Mapping[str, str]) -> dict[str, str]:
    names = {item.name: env_name(item.name) for item in dataclasses.fields(Settings)}
    return {name: environ[var] for name, var in names.items() if var in environ}


def _read_file(path: Path, notices: list[str]) -> dict[str, Any]:
    """The file's table, or {} after moving a broken file aside."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        notices.append(_set_aside(path, f"could not be read ({error})"))
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        notices.append(_set_aside(path, f"is not valid TOML ({error})"))
        return {}


def _set_aside(path: Path, problem: str) -> str:
    try:
        backup = set_aside(path)
    except OSError as error:
        return f"Settings file {path} {problem}, and could not be moved aside ({error}). Defaults are used."
    return f"Settings file {path} {problem}. It was kept as {backup}; defaults are used."


def _coerce_file_values(values: dict[str, Any], path: Path, notices: list[str]) -> dict[str, Any]:
    """Typed values from the file; a bad or unknown key is dropped with a notice, the rest kept."""
    known = {item.name for item in dataclasses.fields(Settings)}
    result: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in known:
            notices.append(f"{path}: unknown setting {key!r} ignored.")
            continue
        try:
            value = coerce(key, raw)
            Settings(**{key: value})  # range checks, one key at a time
        except SettingsError as error:
            notices.append(f"{path}: {key}: {error}; default used.")
        else:
            result[key] = value
    return result


def _coerce_all(values: Mapping[str, Any], source: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, raw in values.items():
        try:
            result[key] = coerce(key, raw)
        except SettingsError as error:
            raise SettingsError(f"{source(key)}={raw!r}: {error}") from None
    return result


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def coerce(name: str, raw: Any) -> Any:
    """Convert `raw` (text from env/CLI, or a TOML value) to the field's declared type."""
    kind = get_type_hints(Settings)[name]
    optional = get_origin(kind) in (Union, UnionType) and NoneType in get_args(kind)
    if optional:
        kind = next(arg for arg in get_args(kind) if arg is not NoneType)
        if raw is None or raw == "":
            return None
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise SettingsError("expected true or false")
    if kind is int:
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise SettingsError("expected a whole number")
        try:
            return int(raw)
        except ValueError:
            raise SettingsError("expected a whole number") from None
    if kind is float:
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise SettingsError("expected a number") from None
    if not isinstance(raw, str):
        raise SettingsError("expected text")
    return Path(raw).expanduser() if kind is Path else raw
