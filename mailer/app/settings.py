"""One typed Settings object, read from MAILER_* environment variables or a .env file."""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mailer.app.domain_limits import parse_domain_limits

DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"


class Settings(BaseSettings):
    """Defaults serve the demo; production sets at least the secret key and SMTP URL."""

    model_config = SettingsConfigDict(
        env_prefix="MAILER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite:///./mailer.db"
    smtp_url: str = "smtp://127.0.0.1:25"
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = DEV_SECRET_KEY
    from_: str = Field(default="Newsletter <newsletter@example.org>", alias="MAILER_FROM")
    rate: float = Field(default=50.0, gt=0)
    concurrency: int = Field(default=4, ge=1, le=100)
    pending_ttl: int = Field(default=7, ge=1, description="days before pending consent is purged")
    record_ip: Literal["full", "truncated", "none"] = "truncated"
    api_token: str = ""
    subscribe_rate: str = "10/minute"
    confirmations_per_day: int = Field(
        default=5, ge=1, description="confirmation mails to one address per 24 h, all lists"
    )
    # The running service (mailer serve / mailer scheduler)
    feed_interval: int = Field(default=60, ge=1, description="minutes between feed fetches")
    tick_seconds: int = Field(default=30, ge=1, description="seconds between schedule checks")
    bounce_maildir: str = Field(default="", description="maildir of bounces; empty = off")

    # -- delivery (docs/delivery.md) --
    max_per_connection: int = Field(default=100, ge=1, description="messages per SMTP session")
    smtp_timeout: float = Field(default=30.0, gt=0, description="seconds per SMTP reply")
    batch_size: int = Field(default=500, ge=1, description="recipients taken per consent check")
    retry_max_age: float = Field(default=48.0, gt=0, description="hours a deferral is retried")
    retry_base: float = Field(default=300.0, gt=0, description="seconds before the first retry")
    retry_linger: float = Field(
        default=900.0, ge=0, description="seconds a send waits for due retries before it exits"
    )
    pause_error_rate: float = Field(
        default=0.5, gt=0, le=1, description="share of failed attempts (last 200) that pauses"
    )
    dkim_selector: str = Field(default="", description="DKIM selector; empty = do not sign")
    dkim_key_file: str = Field(default="", description="PEM RSA (>= 2048) or Ed25519 key")
    dkim_domain: str = Field(default="", description="d= of the signature; default From's")
    verp_domain: str = Field(
        default="", description="VERP local+TOKEN@this; empty: the From's with a maildir; off"
    )
    verp_local: str = Field(default="bounces", description="local part before +TOKEN")
    soft_bounce_limit: int = Field(default=3, ge=1, description="soft bounces that suppress")
    soft_bounce_days: int = Field(default=14, ge=1, description="...counted within these days")

    # -- self-service (docs/security.md) --
    preferences_ttl: int = Field(
        default=180, ge=1, description="days a preferences link in a mail keeps working"
    )

    # -- web security (docs/security.md) --
    max_body: int = Field(
        default=64 * 1024, ge=1024, description="bytes of a request body outside /api/"
    )
    max_api_body: int = Field(
        default=1024 * 1024, ge=1024, description="bytes of a request body to /api/"
    )
    confirm_rate: str = Field(default="20/minute", description="POST /confirm per client")
    preferences_rate: str = Field(default="20/minute", description="POST /preferences per client")
    unsubscribe_rate: str = Field(
        default="600/minute", description="one-click POST /unsubscribe per client (a ceiling)"
    )
    unsubscribe_token_rate: str = Field(
        default="5/minute", description="one-click POST /unsubscribe per link"
    )

    # -- issue 14: contributions and click counting (docs/archive.md) --
    contribution_retention: int = Field(
        default=30, ge=1, description="days a contributor's address is kept after the decision"
    )
    contribute_rate: str = Field(default="5/hour", description="POST /contribute per client")
    contributions_per_address: int = Field(
        default=3, ge=1, description="contributions one contact address may send in 24 hours"
    )
    contribution_links: int = Field(
        default=3, ge=0, description="links a contribution's summary may hold"
    )
    click_rate: str = Field(
        default="60/minute",
        description="clicks counted per client (more are redirected, uncounted)",
    )

    # -- issue 11: the web workspace (docs/ui.md) --
    admin_session_idle: int = Field(
        default=30, ge=1, description="minutes a workspace session lives without a request"
    )
    admin_session_max: int = Field(
        default=12, ge=1, description="hours a workspace session lives at most"
    )
    admin_login_failures: int = Field(
        default=5, ge=1, description="failed logins per account within the window"
    )
    admin_login_client_failures: int = Field(
        default=20, ge=1, description="failed logins per client address within the window"
    )
    admin_login_window: int = Field(
        default=15, ge=1, description="minutes over which failed logins are counted"
    )
    admin_import_max_body: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="bytes of a CSV uploaded in the workspace"
    )

    # -- issue 12: DKIM with several keys (docs/delivery.md) --
    dkim_keys: str = Field(
        default="",
        description="more DKIM keys, selector:path[,selector:path]: one signature per key",
    )

    # -- issue 12: delivery at scale (docs/scaling.md) --
    domain_limits: str = Field(
        default="",
        description="per destination group RATE:CONNECTIONS (compact, or a .toml/.json file)",
    )
    delivery_workers: bool = Field(
        default=False, description="the scheduler's sends go to the delivery workers (PostgreSQL)"
    )
    worker_heartbeat: float = Field(
        default=10.0, gt=0, description="seconds between a worker's heartbeats (stalled at 3x)"
    )

    @field_validator("domain_limits")
    @classmethod
    def _domain_limits(cls, value: str) -> str:
        parse_domain_limits(value)  # a mistyped limit fails at start, not mid-campaign
        return value

    # -- issue 13: the cluster catalogue (docs/clusters.md) --
    proposal_rate: str = Field(default="5/hour", description="POST /clusters/propose per client")

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str) -> str:
        SMTPTarget(value)  # a mistyped option fails at start, not at the first mail
        return value

    @field_validator(
        "subscribe_rate", "confirm_rate", "preferences_rate", "unsubscribe_rate",
        "unsubscribe_token_rate", "contribute_rate", "click_rate",
        "unsubscribe_token_rate", "proposal_rate",
    )  # fmt: skip
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("dkim_keys")
    @classmethod
    def _dkim_keys(cls, value: str) -> str:
        parse_dkim_keys(value)
        return value

    @model_validator(mode="after")
    def _dkim_pair(self) -> Settings:
        if bool(self.dkim_selector) != bool(self.dkim_key_file):
            raise ValueError(
                "MAILER_DKIM_SELECTOR and MAILER_DKIM_KEY_FILE go together: set both or neither"
            )
        return self

    @property
    def dkim_key_files(self) -> list[tuple[str, str]]:
        """(selector, key file) of every DKIM key: MAILER_DKIM_SELECTOR and _KEY_FILE, then
        each of MAILER_DKIM_KEYS. Empty: messages are not signed."""
        single = [(self.dkim_selector, self.dkim_key_file)] if self.dkim_key_file else []
        return single + parse_dkim_keys(self.dkim_keys)

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def uses_default_secret(self) -> bool:
        return self.secret_key == DEV_SECRET_KEY

    @property
    def from_address(self) -> str:
        from email.utils import parseaddr

        return parseaddr(self.from_)[1]

    @property
    def from_domain(self) -> str:
        return self.from_address.rpartition("@")[2] or "localhost"

    @property
    def verp_target(self) -> tuple[str, str] | None:
        """(local part, domain) of VERP envelope senders, or None when VERP is off.

        On whenever bounces come back to us: MAILER_VERP_DOMAIN names the domain
        whose MX reaches `mailer bounces serve` or a Maildir; with only
        MAILER_BOUNCE_MAILDIR set, the From address itself is the return path
        (newsletter+TOKEN@from-domain, which plus-addressing files into the
        From's mailbox). MAILER_VERP_DOMAIN=off turns it off.
        """
        domain = self.verp_domain.strip()
        if domain.lower() in ("off", "none"):
            return None
        if domain:
            return self.verp_local, domain
        if self.bounce_maildir:
            explicit = "verp_local" in self.model_fields_set
            local = self.verp_local if explicit else self.from_address.rpartition("@")[0]
            return (local or self.verp_local), self.from_domain
        return None


_YES = ("1", "true", "yes", "on", "require")
_NO = ("0", "false", "no", "off")


_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}


def parse_rate(spec: str) -> tuple[float, float]:
    """'10/minute' -> (10, 60): a count of requests per period (second, minute or hour)."""
    count, _, unit = spec.partition("/")
    try:
        amount = float(count)
    except ValueError:
        amount = 0.0
    if unit not in _PERIODS or not amount >= 1:
        raise ValueError(f"a rate looks like 10/minute (second, minute or hour), not {spec!r}")
    return amount, _PERIODS[unit]


def parse_dkim_keys(spec: str) -> list[tuple[str, str]]:
    """'sel1:/keys/a.pem,sel2:/keys/b.pem' -> [(selector, path), ...]; '' -> []."""
    pairs = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        selector, colon, path = item.partition(":")
        if not colon or not selector.strip() or not path.strip():
            raise ValueError(f"MAILER_DKIM_KEYS is selector:path[,selector:path], not {item!r}")
        pairs.append((selector.strip(), path.strip()))
    return pairs


class SMTPTarget:
    """MAILER_SMTP_URL taken apart: smtp://user:pass@host:port?starttls=...&verify=..., smtps://.

    `start_tls` is None (upgrade whenever the relay offers STARTTLS: the default),
    True (`?starttls=1`: refuse to send unless the relay offers it) or False
    (`?starttls=0`, and always with smtps://, which is TLS from the first byte).
    Certificates are verified unless `?verify=0`.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"MAILER_SMTP_URL must start with smtp:// or smtps://, not {url!r}")
        query = parse_qs(parts.query)
        unknown = set(query) - {"starttls", "verify"}
        if unknown:
            raise ValueError(f"MAILER_SMTP_URL: unknown option(s) {', '.join(sorted(unknown))}")
        self.hostname = parts.hostname or "127.0.0.1"
        self.use_tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.use_tls else 25)
        starttls = _flag(query, "starttls")
        if self.use_tls and starttls:
            raise ValueError("MAILER_SMTP_URL: smtps:// is TLS already; drop ?starttls=1")
        self.start_tls: bool | None = False if self.use_tls else starttls
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.validate_certs = _flag(query, "verify") is not False

    @property
    def security(self) -> str:
        if self.use_tls:
            return "implicit TLS"
        return {None: "STARTTLS when offered", True: "STARTTLS required", False: "plain"}[
            self.start_tls
        ]

    def __repr__(self) -> str:
        verify = "" if self.validate_certs else ", certificate not verified"
        return f"SMTPTarget({self.hostname}:{self.port}, {self.security}{verify})"


def _flag(query: dict[str, list[str]], name: str) -> bool | None:
    """`?name=1` True, `?name=0` False, absent None; anything else is a settings error."""
    if name not in query:
        return None
    value = query[name][-1].lower()
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise ValueError(f"MAILER_SMTP_URL: ?{name}= takes 1 or 0, not {value!r}")
