"""Settings, read once from the environment.

Every knob is a ``TIMEBANK_*`` variable; ``docs/operations.md`` lists them all.
Nothing else in the package reads ``os.environ``.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from pathlib import Path
from urllib.parse import urlsplit


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:  # a typo must not start a service with a silent default
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from exc


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _webhooks(raw: str) -> dict[str, dict[str, str]]:
    try:
        hooks = json.loads(raw)
        assert isinstance(hooks, dict)
        for community_id, hook in hooks.items():
            uuid.UUID(community_id)
            assert set(hook) == {"url", "secret"} and hook["url"].startswith(("http://", "https://"))
            assert len(hook["secret"]) >= 16
    except (ValueError, AssertionError, AttributeError, TypeError):
        raise SystemExit(
            'TIMEBANK_WEBHOOKS must be JSON: {"<community id>": {"url": "https://...", '
            '"secret": "<at least 16 characters>"}}'
        ) from None
    return hooks


@dataclass(frozen=True)
class Settings:
    # Where the embedded PostgreSQL keeps its data (and the demo admin key file).
    data_dir: Path = field(default_factory=lambda: Path(".timebank").resolve())
    # A real PostgreSQL server; when unset the embedded one in data_dir is used.
    database_url: str | None = None
    # Connections per service process. Requests beyond it wait for a connection; an
    # overflow that opens and closes connections under load costs far more (a new
    # backend, re-prepared statements) than the wait.
    db_pool_size: int = 16
    db_max_overflow: int = 0
    # Largest accepted request body, in bytes (CSV imports are the biggest bodies).
    max_body_bytes: int = 8_000_000
    # One CSV import of service records: at most this many records and bytes (413 beyond).
    import_max_rows: int = 20_000
    import_max_bytes: int = 6_000_000
    # Page size bounds for list endpoints.
    page_default: int = 50
    page_max: int = 500
    # Longest a two-phase hold may stay pending.
    hold_max_timeout_seconds: int = 7 * 24 * 3600
    # Seconds an API-key lookup may be served from the in-process cache; a revocation
    # is immediate on the replica that revoked it and at most this late elsewhere.
    key_cache_seconds: int = 2
    # Posting batches in flight per process (each on its own connection). More lanes
    # overlap more work; fewer make bigger batches and less lock contention on a hot
    # account.
    post_lanes: int = 2
    post_max_batch: int = 64
    log_json: bool | None = None  # None: JSON unless stderr is a terminal
    log_level: str = "INFO"
    demo: bool = True  # seed the demo community into an empty database on `serve`
    # Ed25519 signing keys (timebank/log/keys.py); None means data_dir / "keys".
    signing_key_dir: Path | None = None
    # Prefix of every community log's origin: "<prefix>/<community id>". Name your
    # deployment (e.g. "timebank.example.org/log"); it is signed into checkpoints.
    log_origin: str = "timebank.local/log"
    # Run the log integrator in this process (off for API-only replicas; at least one
    # process must run it). It runs every log_interval_ms, at most 2000 (the merge delay).
    log_integrator: bool = True
    log_interval_ms: int = 1000
    # The address residents reach the service at, for links printed on certificates
    # (QR codes); unset: the address of the request, whose host must be allowed.
    public_url: str | None = None
    # Hosts the service answers for (the Host header); others get 400. Always the
    # loopback names and the public URL's host; "*" allows any (behind a proxy that
    # checks it). /health and /metrics answer any host (probes reach them by address).
    extra_allowed_hosts: tuple[str, ...] = ()
    # Failed authentications (a key that is not valid) per client address and window;
    # past it the address gets 429 without a database lookup until the window passes.
    auth_failure_limit: int = 20
    auth_failure_window_seconds: int = 60
    # Run the scheduled jobs in this process (off for API-only replicas; with several
    # processes on, each job still runs once per period).
    scheduler: bool = True
    # A webhook per community for notifications: {"<community id>": {"url", "secret"}}.
    webhooks: dict[str, dict[str, str]] = field(default_factory=dict)
    # The bearer token Prometheus sends to GET /metrics; unset, /metrics answers 404.
    metrics_token: str | None = None
    # Days an Idempotency-Key's answer is kept; the idempotency-retention job removes older ones.
    idempotency_retention_days: int = 30
    # People's pages: a session lasts this many days (unless ended); a one-time sign-in
    # link this many hours unless its issuer says otherwise (at most 14 days).
    session_days: int = 30
    sign_in_link_hours: int = 72
    # Wrong passwords per account in the window (counted in the database, across
    # processes), then that account waits out the window; and sign-in failures per
    # client address and window (in each process's memory).
    sign_in_account_limit: int = 5
    sign_in_address_limit: int = 30
    sign_in_window_minutes: int = 15
    # The secret that signs the pages' CSRF tokens; unset: a random one kept in
    # <key dir>/web-secret, made at first start (every process of a deployment must
    # share it: set it, or share the key directory).
    web_secret: str | None = None

    @property
    def key_dir(self) -> Path:
        return self.signing_key_dir or self.data_dir / "keys"

    @cached_property  # read on every request
    def allowed_hosts(self) -> frozenset[str]:
        hosts = {"localhost", "127.0.0.1", "::1", *(h.lower() for h in self.extra_allowed_hosts)}
        if self.public_url:
            hosts.add((urlsplit(self.public_url).hostname or "").lower())
        return frozenset(hosts - {""})

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("TIMEBANK_DATA_DIR") or ".timebank").expanduser().resolve()
        log_json_raw = os.environ.get("TIMEBANK_LOG_JSON")
        key_dir = os.environ.get("TIMEBANK_SIGNING_KEY_DIR")
        return cls(
            data_dir=data_dir,
            database_url=os.environ.get("TIMEBANK_DATABASE_URL") or None,
            db_pool_size=_int("TIMEBANK_DB_POOL_SIZE", 16),
            db_max_overflow=_int("TIMEBANK_DB_MAX_OVERFLOW", 0),
            max_body_bytes=_int("TIMEBANK_MAX_BODY_BYTES", 8_000_000),
            import_max_rows=_int("TIMEBANK_IMPORT_MAX_ROWS", 20_000),
            import_max_bytes=_int("TIMEBANK_IMPORT_MAX_BYTES", 6_000_000),
            page_default=_int("TIMEBANK_PAGE_DEFAULT", 50),
            page_max=_int("TIMEBANK_PAGE_MAX", 500),
            hold_max_timeout_seconds=_int("TIMEBANK_HOLD_MAX_TIMEOUT_SECONDS", 7 * 24 * 3600),
            key_cache_seconds=_int("TIMEBANK_KEY_CACHE_SECONDS", 2),
            post_lanes=_int("TIMEBANK_POST_LANES", 2),
            post_max_batch=_int("TIMEBANK_POST_MAX_BATCH", 64),
            log_json=None if not log_json_raw else _bool("TIMEBANK_LOG_JSON", True),
            log_level=(os.environ.get("TIMEBANK_LOG_LEVEL") or "INFO").upper(),
            demo=_bool("TIMEBANK_DEMO", True),
            signing_key_dir=Path(key_dir).expanduser().resolve() if key_dir else None,
            log_origin=os.environ.get("TIMEBANK_LOG_ORIGIN") or "timebank.local/log",
            log_integrator=_bool("TIMEBANK_LOG_INTEGRATOR", True),
            log_interval_ms=_int("TIMEBANK_LOG_INTERVAL_MS", 1000),
            public_url=os.environ.get("TIMEBANK_PUBLIC_URL") or None,
            extra_allowed_hosts=tuple(
                h.strip() for h in (os.environ.get("TIMEBANK_ALLOWED_HOSTS") or "").split(",") if h.strip()
            ),
            auth_failure_limit=_int("TIMEBANK_AUTH_FAILURE_LIMIT", 20),
            auth_failure_window_seconds=_int("TIMEBANK_AUTH_FAILURE_WINDOW_SECONDS", 60),
            scheduler=_bool("TIMEBANK_SCHEDULER", True),
            webhooks=_webhooks(os.environ.get("TIMEBANK_WEBHOOKS") or "{}"),
            metrics_token=(os.environ.get("TIMEBANK_METRICS_TOKEN") or "").strip() or None,
            idempotency_retention_days=_int("TIMEBANK_IDEMPOTENCY_RETENTION_DAYS", 30),
            session_days=_int("TIMEBANK_SESSION_DAYS", 30),
            sign_in_link_hours=_int("TIMEBANK_SIGN_IN_LINK_HOURS", 72),
            sign_in_account_limit=_int("TIMEBANK_SIGN_IN_ACCOUNT_LIMIT", 5),
            sign_in_address_limit=_int("TIMEBANK_SIGN_IN_ADDRESS_LIMIT", 30),
            sign_in_window_minutes=_int("TIMEBANK_SIGN_IN_WINDOW_MINUTES", 15),
            web_secret=(os.environ.get("TIMEBANK_WEB_SECRET") or "").strip() or None,
        ).checked()

    def checked(self) -> Settings:
        if not 50 <= self.log_interval_ms <= 2000:
            raise SystemExit(
                "TIMEBANK_LOG_INTERVAL_MS must be from 50 to 2000 (the log's maximum merge delay)"
            )
        if not self.log_origin or any(c.isspace() or c == "+" for c in self.log_origin):
            raise SystemExit(
                "TIMEBANK_LOG_ORIGIN must be non-empty, without spaces or '+' (C2SP note key names)"
            )
        if self.metrics_token is not None and (
            len(self.metrics_token) < 16 or not self.metrics_token.isprintable()
        ):
            raise SystemExit(
                "TIMEBANK_METRICS_TOKEN must be at least 16 printable characters (e.g. a random hex string)"
            )
        if self.idempotency_retention_days < 1:
            raise SystemExit("TIMEBANK_IDEMPOTENCY_RETENTION_DAYS must be at least 1")
        if self.public_url and not (
            self.public_url.startswith(("http://", "https://")) and urlsplit(self.public_url).hostname
        ):
            raise SystemExit("TIMEBANK_PUBLIC_URL must be an http(s) URL, e.g. https://timebank.example.org")
        if not 1 <= self.import_max_bytes <= self.max_body_bytes or self.import_max_rows < 1:
            raise SystemExit(
                "TIMEBANK_IMPORT_MAX_ROWS must be at least 1 and TIMEBANK_IMPORT_MAX_BYTES from 1 to "
                "TIMEBANK_MAX_BODY_BYTES"
            )
        if self.auth_failure_limit < 1 or self.auth_failure_window_seconds < 1:
            raise SystemExit(
                "TIMEBANK_AUTH_FAILURE_LIMIT and TIMEBANK_AUTH_FAILURE_WINDOW_SECONDS must be at least 1"
            )
        if not 1 <= self.session_days <= 365 or not 1 <= self.sign_in_link_hours <= 14 * 24:
            raise SystemExit(
                "TIMEBANK_SESSION_DAYS must be from 1 to 365 and TIMEBANK_SIGN_IN_LINK_HOURS from 1 to 336"
            )
        if min(self.sign_in_account_limit, self.sign_in_address_limit, self.sign_in_window_minutes) < 1:
            raise SystemExit("the TIMEBANK_SIGN_IN_* limits and window must be at least 1")
        if self.web_secret is not None and len(self.web_secret) < 32:
            raise SystemExit("TIMEBANK_WEB_SECRET must be at least 32 characters (e.g. 64 random hex digits)")
        return self

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over HTTPS when the service is reached over HTTPS."""
        return bool(self.public_url and self.public_url.startswith("https://"))

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
