"""Configuration: environment variables (RENEWLY_*) over an optional TOML file over defaults.

The TOML file is `$RENEWLY_CONFIG_FILE`, or `./renewly.toml` when it exists. See
docs/configuration.md for every key.
"""

from __future__ import annotations

import os
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url

from renewly.accounts.rules.members import validate_country
from renewly.shared.calendar import validate_timezone
from renewly.shared.errors import BillingError, InvalidInput

# EU standard VAT rates (2026) and a few others; operators replace this table in their file.
DEFAULT_TAX_RATES = {
    "AT": "20", "BE": "21", "BG": "20", "CY": "19", "CZ": "21", "DE": "19", "DK": "25", "EE": "24",
    "ES": "21", "FI": "25.5", "FR": "20", "GR": "24", "HR": "25", "HU": "27", "IE": "23", "IT": "22",
    "LT": "21", "LU": "17", "LV": "21", "MT": "18", "NL": "21", "PL": "23", "PT": "23", "RO": "21",
    "SE": "25", "SI": "22", "SK": "23", "GB": "20", "CH": "8.1", "NO": "25",
}


# French law's fixed indemnity for recovery costs owed by a late business payer (Code de commerce
# L441-10, D441-5): printed on every invoice, frozen into it like the seller's mentions.
RECOVERY_INDEMNITY_EUR = "40"


class SellerIdentity(BaseModel):
    """The operator as it appears on every invoice it issues, with the mentions French law asks
    of a business invoice (docs/invoices.md). All of it is frozen into each invoice at issue."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a silent default
    name: str = "Renewly Demo SAS"
    line1: str = "1 rue de la Paix"
    line2: str = ""
    postcode: str = "75002"
    city: str = "Paris"
    country: str = "FR"
    vat_id: str = "FR00123456789"
    registration: str = "RCS Paris 123 456 789"
    siren: str = "123456782"  # 9 digits (INSEE); required of a seller in France
    siret: str = "12345678200010"  # 14 digits: the SIREN and the establishment's number
    share_capital: str = ""  # "SAS au capital de 10 000 €": printed as written when set
    # Payment terms: the due date is the issue date plus these days (at most 60, Code de commerce
    # L441-10); 0 prints "payable on receipt".
    payment_terms_days: int = Field(30, ge=0, le=60)
    # Yearly rate of late-payment penalties, in percent (at least three times the legal interest
    # rate, which moves twice a year: the operator keeps it up to date).
    late_payment_rate: Decimal = Field(Decimal("12.15"), gt=0, lt=100)
    support_email: str = "support@renewly.example"  # where cancelled accounts ask for a reactivation
    timezone: str = "Europe/Paris"  # issue dates and invoice series follow the seller's calendar

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        return _as_value_error(validate_country, value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return _as_value_error(validate_timezone, value)

    @field_validator("siren", "siret")
    @classmethod
    def _company_number(cls, value: str, info: ValidationInfo) -> str:
        """A SIREN (9 digits) or SIRET (14), its spaces dropped, its check digit (Luhn's) right."""
        value = value.replace(" ", "")
        digits = 9 if info.field_name == "siren" else 14
        if value and not (len(value) == digits and _luhn_valid(value)):
            raise ValueError(f"a {str(info.field_name).upper()} is {digits} digits with a valid check digit, "
                             f"got {value!r}")
        return value

    @model_validator(mode="after")
    def _french_identifiers(self) -> SellerIdentity:
        if self.country == "FR" and not self.siren:
            raise ValueError("a seller in France prints its SIREN on every invoice: set seller.siren")
        if self.siret and not self.siret.startswith(self.siren):
            raise ValueError(f"the SIRET {self.siret} does not start with the SIREN {self.siren}")
        return self

    def snapshot(self) -> dict[str, str]:
        """What every invoice freezes of the seller: strings, as printed (JSON has no decimals)."""
        frozen = {key: str(value) for key, value in self.model_dump(exclude={"timezone", "support_email"}).items()}
        return {**frozen, "recovery_indemnity_eur": RECOVERY_INDEMNITY_EUR}

    def is_the_demo_s(self) -> bool:
        """Whether an invoice would still name the demo's seller: its name, VAT id, registration or
        SIREN left as shipped. The test clock and `renewly demo` keep it; the system clock refuses it."""
        return any(getattr(self, key) == SellerIdentity.model_fields[key].default
                   for key in ("name", "vat_id", "registration", "siren"))


WEEK_MINUTES = 7 * 24 * 60


class BatchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chunk_size: int = Field(2000, ge=1, le=20000)  # subscriptions claimed per transaction
    # At most a week between two runs of a batch: the bound keeps every date it computes in range.
    renewal_interval_minutes: int = Field(60, ge=1, le=WEEK_MINUTES)
    dunning_interval_minutes: int = Field(60, ge=1, le=WEEK_MINUTES)
    retention_interval_minutes: int = Field(60, ge=1, le=WEEK_MINUTES)  # R10: deletions due


class PaymentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gateway: Literal["simulated"] = "simulated"  # a Stripe adapter fits the same port (docs/payments.md)
    # The simulated gateway keeps its ledger apart from Renewly's tables, as a real gateway would.
    # Default: with the database (Settings.simulator_url).
    simulator_url: str | None = None
    simulator_latency_ms: int = Field(0, ge=0, le=60_000)
    # R5.1: the card check authorizes this many major units of the account's currency (0: a
    # zero-amount verification); the policy file says when it is voided (R5.2).
    # (At most 100: a check holds the amount on the customer's card for days.)
    verification_units: int = Field(1, ge=0, le=100)
    collect_interval_minutes: int = Field(60, ge=1, le=WEEK_MINUTES)  # R7.1: payments run hourly by default
    void_interval_minutes: int = Field(60, ge=1, le=WEEK_MINUTES)
    concurrency: int = Field(8, ge=1, le=256)  # gateway calls in flight at once
    rate_limit_per_second: float = Field(90.0, gt=0, le=100_000)  # below the gateway's cap (Stripe: 100 writes/s)
    slice_size: int = Field(500, ge=1, le=20000)
    # How long a process may take over its slice of gateway calls before the janitor may settle
    # its pending attempts in its place.
    lease_seconds: int = Field(900, ge=0, le=86_400)


class WorkerSettings(BaseModel):
    """`renewly worker` (docs/operations.md; on PostgreSQL renewly/worker/queue.py)."""

    model_config = ConfigDict(extra="forbid")

    # How often a worker asks whether a batch's tick has come: the batches' own intervals say
    # when work runs (every hour on the hour); this only bounds how late after its tick it starts.
    # On PostgreSQL a cron line of procrastinate's: under a minute `*/N` seconds (a divisor of 60
    # spaces the looks evenly), from a minute on whole minutes.
    check_seconds: int = Field(10, ge=1, le=3600)
    # PostgreSQL: at most this many helper jobs take slices of a tick's batch beside the tick
    # itself, one per other live worker (0: a tick works alone).
    slice_helpers: int = Field(4, ge=0, le=64)
    # PostgreSQL: a live worker says so this often; a worker silent for `stalled_seconds` is taken
    # for dead and its jobs are run again by another (kill -9, a machine lost).
    heartbeat_seconds: float = Field(10.0, ge=0.1, le=300)
    stalled_seconds: float = Field(60.0, ge=0.5, le=3600)

    @model_validator(mode="after")
    def _stalled_after_several_heartbeats(self) -> WorkerSettings:
        # A live worker late by one heartbeat (a long pause of its event loop) is not dead.
        if self.stalled_seconds < 3 * self.heartbeat_seconds:
            raise ValueError("worker.stalled_seconds must be at least 3 × worker.heartbeat_seconds")
        return self


# The port an SMTP server listens on for each way of securing the connection (RFC 8314, RFC 6409).
DEFAULT_SMTP_PORTS = {"none": 25, "starttls": 587, "tls": 465}


class MailSettings(BaseModel):
    """E-mail delivery over SMTP (docs/mail.md). No `host`: delivery is off, and e-mails stay in the
    outbox, readable with `renewly outbox show ID` (the embedded default)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("", max_length=253)
    port: int | None = Field(None, ge=1, le=65535)  # default by `security`: 25, 587, 465
    # starttls: upgrade a plain connection (port 587); tls: TLS from the first byte (port 465);
    # none: plain text, only for a relay on the same machine or network.
    security: Literal["none", "starttls", "tls"] = "starttls"
    # The server's certificate is always verified (its chain and its name, `host`), against the
    # system's authorities, or only those of this PEM file (a private CA): never plain text instead.
    ca_file: Path | None = None
    username: str = Field("", max_length=320)
    # Never printed nor logged: pydantic shows it as "**********".
    password: SecretStr = SecretStr("")
    # The sender of every e-mail: an address, or a name and an address ("Billing <billing@example.com>").
    from_address: str = Field("", max_length=320)
    # The right-hand side of every Message-ID (<renewly.outbox.ID@DOMAIN>); default: the sender's domain.
    message_id_domain: str = Field("", max_length=253)
    timeout_seconds: float = Field(30, gt=0, le=600)  # one SMTP exchange (connecting, a command, the data)
    connections: int = Field(8, ge=1, le=64)  # SMTP connections in parallel, per process
    slice_size: int = Field(200, ge=1, le=5000)  # e-mails claimed per slice
    interval_minutes: int = Field(1, ge=1, le=WEEK_MINUTES)  # how often the worker's mail batch runs
    # A temporary failure (4xx, no connection, a timeout) is tried again after this, doubled at each
    # failure up to the cap; never given up.
    retry_first_seconds: int = Field(60, ge=1, le=86_400)
    retry_max_seconds: int = Field(3600, ge=1, le=7 * 86_400)
    # How long a process may take over a slice before another may send its e-mails in its place
    # (the first one died): at least the time a slice takes.
    lease_seconds: int = Field(600, ge=10, le=86_400)
    # How long the removal link of a billing e-mail works after the e-mail was written (R4.2).
    removal_link_days: int = Field(60, ge=1, le=3660)

    @property
    def configured(self) -> bool:
        return bool(self.host)

    @field_validator("ca_file")
    @classmethod
    def _authorities(cls, path: Path | None) -> Path | None:
        """Read at the door: a file that holds no certificate would fail every delivery later."""
        if path is None:
            return None
        import ssl
        if not path.is_file():
            raise ValueError(f"ca_file {path} is not a file")
        try:
            ssl.create_default_context(cafile=str(path))
        except (ssl.SSLError, OSError, UnicodeDecodeError) as error:
            raise ValueError(f"ca_file {path} holds no certificate authority in PEM: "
                             f"{getattr(error, 'reason', None) or error}") from None
        return path.resolve()

    @property
    def smtp_port(self) -> int:
        return self.port or DEFAULT_SMTP_PORTS[self.security]

    @property
    def sender_domain(self) -> str:
        return self.message_id_domain or self.from_address.rpartition("@")[2].strip(" >")

    @model_validator(mode="after")
    def _complete(self) -> MailSettings:
        if not self.host:
            return self
        if not self.from_address:
            raise ValueError("host is set but not from_address: every e-mail needs a sender")
        from email.headerregistry import Address
        from email.utils import parseaddr
        _name, address = parseaddr(self.from_address)
        try:
            Address(addr_spec=address)
        except (ValueError, IndexError):
            address = ""
        if "@" not in address:
            raise ValueError(f"from_address {self.from_address!r} is not an e-mail address")
        if any(character in self.sender_domain for character in " <>@\"\r\n") or not self.sender_domain:
            raise ValueError(f"message_id_domain {self.sender_domain!r} is not a domain")
        if self.ca_file is not None and self.security == "none":
            raise ValueError("ca_file is set but security is 'none': no certificate to verify")
        if bool(self.username) != bool(self.password.get_secret_value()):
            raise ValueError("username and password go together: set both or neither")
        if self.retry_max_seconds < self.retry_first_seconds:
            raise ValueError("retry_max_seconds is shorter than retry_first_seconds")
        return self


class ApiSettings(BaseModel):
    """The REST API's server processes (`renewly serve`; docs/api.md, docs/operations.md)."""

    model_config = ConfigDict(extra="forbid")

    # The worker threads of each server process that every request's key lookup and the hot reads
    # (an account, the invoice list, a member's banner) take turns on. One is the cheapest: more
    # threads contend for Python's GIL, 1.24-1.27 ms of server CPU a request with one against
    # 1.35-1.59 with two and 1.53-1.85 with anyio's 40 (docs/performance.md, "API"). Raise it for a
    # database a network away, whose round trips one thread would wait on in turn.
    read_threads: int = Field(1, ge=1, le=64)


class PortalSettings(BaseModel):
    """The billing portal (docs/portal.md): its one-time sign-in links and the sessions they open."""

    model_config = ConfigDict(extra="forbid")

    link_minutes: int = Field(5, ge=1, le=60)  # how long a sign-in link works (once)
    session_idle_minutes: int = Field(30, ge=1, le=1440)  # a session unused this long is over
    session_hours: int = Field(12, ge=1, le=168)  # and every session is over this long after sign-in
    # Behind a proxy that terminates TLS but does not say so (X-Forwarded-Proto from an address
    # uvicorn trusts): every portal cookie is Secure. Otherwise a cookie is Secure when its request
    # came over HTTPS.
    https_only: bool = False


class EmbedSettings(BaseModel):
    """The banner embed in the host product's dashboard (docs/portal.md): the origins allowed to
    frame it, and how long a banner token works."""

    model_config = ConfigDict(extra="forbid")

    # The host product's pages that may show the banner in an iframe (its Content-Security-Policy's
    # frame-ancestors): origins, `https://app.example.com` (a port if any; http:// only for localhost).
    # Empty: no page may frame it, and no banner token is made.
    allowed_origins: list[str] = Field(default_factory=list, max_length=20)
    token_minutes: int = Field(5, ge=1, le=60)  # how long a banner token works (the iframe's page load)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        return [_as_value_error(web_origin, origin) for origin in origins]


def web_origin(value: str) -> str:
    """An origin as a Content-Security-Policy source names it: scheme, host and port, nothing else
    (no path, query, wildcard, space or quote that would change the policy around it)."""
    from urllib.parse import urlsplit
    origin = value.strip().rstrip("/").lower()
    parts = urlsplit(origin)
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = parts.hostname or ""
    local = host in ("localhost", "127.0.0.1")
    if (parts.scheme not in ("https", "http") or (parts.scheme == "http" and not local) or port == -1
            or not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", host) or parts.path or parts.query
            or parts.fragment or parts.username is not None or parts.password is not None):
        raise InvalidInput(f"an allowed origin is https://host or https://host:port (http:// only for "
                           f"localhost), got {value!r}")
    return origin


# Standard Webhooks' (Svix's) schedule, two daily tries added so that it spans three days: after
# the first try fails, the next comes 5 s later, then 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 24 h, 24 h.
DEFAULT_WEBHOOK_RETRIES = [5, 300, 1800, 7200, 18_000, 36_000, 36_000, 86_400, 86_400]


class WebhookSettings(BaseModel):
    """Webhooks to the host product (docs/webhooks.md): each outbox event, signed (Standard
    Webhooks), to every endpoint registered for its type (`renewly webhooks add`)."""

    model_config = ConfigDict(extra="forbid")

    # The waits before each try again, in seconds: the n-th failure of a delivery waits the n-th
    # value; once they are spent, the delivery has failed (`renewly webhooks replay` tries again).
    retry_schedule_seconds: list[int] = Field(default_factory=lambda: list(DEFAULT_WEBHOOK_RETRIES),
                                              min_length=1, max_length=30)
    # An endpoint whose every try has failed for this long is disabled, and the operator told.
    disable_after_hours: int = Field(72, ge=1, le=30 * 24)
    timeout_seconds: float = Field(15, gt=0, le=120)  # one POST, from connecting to the response read
    concurrency: int = Field(16, ge=1, le=256)  # POSTs in flight at once, per process
    slice_size: int = Field(200, ge=1, le=5000)  # deliveries claimed per slice
    interval_minutes: int = Field(1, ge=1, le=WEEK_MINUTES)  # how often the worker's webhooks batch runs
    # How long a process may take over a slice before another may send its deliveries in its
    # place (the first one died): at least the longest a slice can take (checked).
    lease_seconds: int = Field(600, ge=10, le=86_400)

    @field_validator("retry_schedule_seconds")
    @classmethod
    def _waits(cls, waits: list[int]) -> list[int]:
        if any(not 1 <= wait <= 7 * 86_400 for wait in waits):
            raise ValueError("each wait is from 1 second to 7 days (604800)")
        return waits

    @model_validator(mode="after")
    def _lease_outlasts_a_slice(self) -> WebhookSettings:
        rounds = -(-self.slice_size // self.concurrency)
        if self.lease_seconds < rounds * self.timeout_seconds:
            raise ValueError(f"lease_seconds ({self.lease_seconds}) is shorter than a slice can take: "
                             f"{rounds} round(s) of {self.concurrency} POSTs of up to {self.timeout_seconds} s")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RENEWLY_", env_nested_delimiter="__", extra="forbid")

    database_url: str = "sqlite:///./renewly.db"
    clock: Literal["system", "test"] = "system"
    seller: SellerIdentity = SellerIdentity()
    tax_rates: dict[str, Decimal] = Field(default_factory=lambda: {k: Decimal(v) for k, v in DEFAULT_TAX_RATES.items()})
    default_tax_rate: Decimal = Field(Decimal(0), ge=0, lt=100)  # a percentage, as tax_rates
    batches: BatchSettings = BatchSettings()
    payments: PaymentSettings = PaymentSettings()
    worker: WorkerSettings = WorkerSettings()
    mail: MailSettings = MailSettings()
    webhooks: WebhookSettings = WebhookSettings()
    api: ApiSettings = ApiSettings()
    portal: PortalSettings = PortalSettings()
    embed: EmbedSettings = EmbedSettings()
    # Signs the removal links of billing e-mails (R4.2, accounts/removal_links.py): 32 characters
    # or more, random, the same in every process of a deployment. Changing it kills the links
    # already sent. Never printed nor logged.
    secret_key: SecretStr = SecretStr("")
    # Where customers reach Renewly's pages (https://billing.example.com): the removal links point there.
    public_url: str = Field("", max_length=200)
    # The command line's log lines on stderr (a parked row, a gateway that did not answer):
    # plain for an operator, one JSON object a line for a log collector.
    log_format: Literal["plain", "json"] = "plain"
    # One log line per batch run (its name, instant, counts, seconds): off by default, so that a
    # command's stderr stays its one line of trouble, or nothing.
    log_batch_runs: bool = False
    # An operator's e-mail templates and translations (docs/texts.md): `mail/<kind>.txt|html`,
    # `banners.txt`, `locale/<lang>/LC_MESSAGES/messages.po`, each winning over the shipped one;
    # checked whole at start. None: the shipped ones alone.
    templates_dir: Path | None = None

    @field_validator("templates_dir")
    @classmethod
    def _templates_folder(cls, folder: Path | None) -> Path | None:
        if folder is None:
            return None
        if not folder.is_dir():
            raise ValueError(f"{folder} is not a folder")
        return folder.resolve()

    def refuse_the_demo_seller_on_the_system_clock(self) -> None:
        """Real invoices must not silently say "Renewly Demo SAS": on the system clock, issuing
        one is refused until the operator sets the seller (docs/configuration.md)."""
        if self.clock == "system" and self.seller.is_the_demo_s():
            raise InvalidInput("invoices would name the demo seller; set [seller] (docs/configuration.md)",
                               code="demo_seller")

    def simulator_url(self) -> str:
        """Where the simulated gateway keeps its ledger: `payments.simulator_url`, else with the
        database, whatever the working directory: on SQLite a file beside the database's
        (renewly.db -> renewly-gateway.db), on PostgreSQL the same database (the gateway keeps its
        tables in a schema of their own there)."""
        if self.payments.simulator_url:
            return self.payments.simulator_url
        url = make_url(self.database_url)
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return self.database_url  # PostgreSQL; or an SQLite database in memory, and its ledger too
        return url.set(database=gateway_ledger_beside(url.database)).render_as_string(hide_password=False)

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() and len(value.get_secret_value()) < 32:
            raise ValueError("a secret key is 32 characters or more (python -c 'import secrets; "
                             "print(secrets.token_urlsafe(32))')")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        from urllib.parse import urlsplit
        value = value.strip().rstrip("/")
        if not value:
            return value
        parts = urlsplit(value)
        # RFC 8058: a one-click List-Unsubscribe link is HTTPS.
        if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"public_url is an https:// address without query (https://billing.example.com), "
                             f"got {value!r}")
        return value

    @field_validator("tax_rates")
    @classmethod
    def _rates(cls, rates: dict[str, Decimal]) -> dict[str, Decimal]:
        checked = {}
        for country, rate in rates.items():
            if not Decimal(0) <= rate < Decimal(100):
                raise ValueError(f"tax rate for {country} must be a percentage from 0 to 100, got {rate}")
            checked[_as_value_error(validate_country, country)] = rate
        return checked

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first, then the TOML file's values (passed in as init arguments).
        return env_settings, init_settings


def gateway_ledger_beside(database_path: str) -> str:
    """The simulated gateway's ledger file beside an SQLite database file: renewly.db ->
    renewly-gateway.db, renewly.sqlite -> renewly.sqlite-gateway.db."""
    return database_path.removesuffix(".db") + "-gateway.db"


def _luhn_valid(digits: str) -> bool:
    """The check digit of a SIREN or SIRET (Luhn's algorithm)."""
    if not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for index, digit in enumerate(int(char) for char in reversed(digits)):
        doubled = digit * 2 if index % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


def _as_value_error(check, value):
    try:
        return check(value)
    except BillingError as error:
        raise ValueError(error.message) from None


def config_file_path() -> Path | None:
    named = os.environ.get("RENEWLY_CONFIG_FILE")
    if named:
        return Path(named)
    default = Path("renewly.toml")
    return default if default.exists() else None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read and validate the configuration; a bad file is refused with its name and the reason."""
    path = config_file or config_file_path()
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidInput(f"configuration file {path} does not exist", code="config_missing") from None
        except OSError as error:
            raise InvalidInput(f"{path}: cannot read the configuration file ({error.strerror})",
                               code="config_unreadable") from None
        except UnicodeDecodeError as error:
            raise InvalidInput(f"{path}: not a text file (TOML is UTF-8; byte {error.start} is not)",
                               code="config_invalid") from None
        except tomllib.TOMLDecodeError as error:
            raise InvalidInput(f"{path}: {error}", code="config_invalid") from None
    values.update(overrides)
    try:
        return Settings(**values)
    except ValidationError as error:
        where = str(path) if path else "configuration"
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(f"{where}: {field}: {first['msg']}", code="config_invalid") from None
