"""Settings for every service, read from `INNOMATCH_*` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Known to everyone who reads this file, so it is only acceptable in development mode.
DEV_TOKEN_SECRET = "innomatch-development-token-secret-not-for-production"  # noqa: S105

ServiceName = Literal["suppliers", "needs", "matcher", "notifier", "web"]
SERVICES: tuple[ServiceName, ...] = ("suppliers", "needs", "matcher", "notifier", "web")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INNOMATCH_", extra="ignore")

    mode: Literal["development", "production"] = "production"
    kafka_bootstrap: str = "localhost:9092"
    database_url: str = "postgresql://postgres@localhost:5432/innomatch"
    operator_token: SecretStr | None = None
    token_secret: SecretStr = SecretStr(DEV_TOKEN_SECRET)
    # Supplier and buyer-group tokens expire this long after they are issued; the holder
    # gets a fresh one from the token endpoint while its token is still valid.
    token_ttl_days: float = Field(default=90.0, gt=0, le=3650)
    smtp_url: str | None = None
    webhook_allow_private: bool = False

    host: str = "127.0.0.1"
    suppliers_port: int = 8020
    needs_port: int = 8010
    matcher_port: int = 8030
    notifier_port: int = 8040
    web_port: int = 8050

    # tansu answers a fetch only after the full wait, so keep this low in development.
    kafka_fetch_max_wait_ms: int = Field(default=50, ge=1, le=5000)
    # A consumer that stops heartbeating (a killed process) leaves its group after this; until
    # then its replacement waits to join. `innomatch dev` uses 2 s. Heartbeats: a third of it.
    kafka_session_timeout_ms: int = Field(default=10000, ge=1000, le=300000)
    # The embedded broker rejects InitProducerId; Apache Kafka accepts it.
    kafka_idempotent_producer: bool = False
    kafka_partitions: int = Field(default=3, ge=1)
    # Copies of each partition that create-topics asks for, and how many of them must have a
    # write before the broker confirms it (acks=all). 1 and the broker's default suit a single
    # broker; a cluster of three takes 3 and 2, so one broker may be away without a stop.
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_min_insync_replicas: int | None = Field(default=None, ge=1)
    # Events applied per consumer transaction: fewer commits, more throughput.
    kafka_max_batch: int = Field(default=500, ge=1)
    dlq_max_attempts: int = Field(default=3, ge=1)
    dlq_retry_backoff_s: float = Field(default=0.2, ge=0)
    # A consumer waiting out a transient fault (database or broker away) tries the same batch
    # again after this pause, doubled each time up to the maximum, for as long as it lasts.
    consumer_retry_backoff_s: float = Field(default=0.2, gt=0)
    consumer_retry_backoff_max_s: float = Field(default=5.0, gt=0)
    # Consumer groups are named `<prefix>-<service>...`: a second deployment on the same
    # cluster (a staging copy, say) takes a prefix of its own and reads every topic itself.
    kafka_group_prefix: str = Field(
        default="innomatch", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$"
    )
    # A start that cannot join its consumer groups in this time fails, so a supervisor sees it.
    kafka_start_timeout_s: float = Field(default=120.0, gt=0)
    # On SIGTERM, handlers in flight get this long to finish; what they leave is consumed again.
    kafka_shutdown_grace_s: float = Field(default=5.0, gt=0)

    db_pool_min: int = Field(default=1, ge=0)
    db_pool_max: int = Field(default=10, ge=1)
    outbox_batch_size: int = Field(default=500, ge=1)
    outbox_poll_interval_s: float = Field(default=1.0, gt=0)
    lag_poll_interval_s: float = Field(default=5.0, gt=0)
    # Processed-event ids are kept this long (redeliveries come within minutes; a consumer
    # group reset reads older events again, which the handlers' version checks absorb).
    inbox_retention_days: float = Field(default=14.0, gt=0)
    inbox_prune_interval_s: float = Field(default=3600.0, gt=0)
    # Registrations a client address may make per minute; 0 turns the limit off.
    registration_rate_per_minute: int = Field(default=30, ge=0)

    # A pair scoring below this is no match; each need keeps at most top_k matches.
    matcher_threshold: float = Field(default=0.30, ge=0, le=1)
    matcher_top_k: int = Field(default=50, ge=1, le=1000)
    # How long a matcher consumer waits for the embedder group's vectors before embedding a
    # text itself (only a stopped embedder makes it wait that long).
    matcher_embed_wait_s: float = Field(default=120.0, gt=0)
    # Names this instance's own consumer groups (its replicas of suppliers and needs). Empty:
    # host name and process id, so every process reads the replicas' topics in full.
    matcher_instance: str = Field(default="", max_length=100, pattern=r"^[A-Za-z0-9_.-]*$")

    # Notifier: delivery worker, retries, digests, e-mail.
    notifier_public_url: str | None = Field(
        default=None, description="Base URL of the notifier as recipients reach it (unsubscribe links)"
    )
    notifier_email_from: str = "Innomatch <alerts@innomatch.local>"
    notifier_poll_interval_s: float = Field(default=1.0, gt=0)
    notifier_concurrency: int = Field(default=32, ge=1, le=1000)
    # Instant alerts due together for one recipient and channel (a need's shortlist) go in
    # one webhook POST or e-mail, at most this many to one; 1 sends each alert on its own.
    notifier_batch_max: int = Field(default=50, ge=1, le=500)
    notifier_lease_s: float = Field(default=60.0, gt=0)
    notifier_webhook_timeout_s: float = Field(default=5.0, gt=0)
    notifier_smtp_timeout_s: float = Field(default=10.0, gt=0)
    notifier_retry_base_s: float = Field(default=2.0, gt=0)
    notifier_retry_max_s: float = Field(default=3600.0, gt=0)
    notifier_retry_horizon_s: float = Field(default=86400.0, gt=0)
    notifier_timezone: str = "Europe/Stockholm"
    notifier_digest_time: str = Field(default="07:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    notifier_digest_weekday: int = Field(default=0, ge=0, le=6, description="0 = Monday")
    notifier_digest_budget: int = Field(default=20, ge=1, le=1000)
    notifier_digest_check_s: float = Field(default=30.0, gt=0)

    # Needs as open data (GET /v1/needs.ocds.json). Every OCDS publisher gets its own ocid prefix
    # from the Open Contracting Partnership; the default is no registered prefix, so a
    # deployment that publishes sets its own.
    ocds_ocid_prefix: str = Field(
        default="ocds-innomatch", min_length=1, max_length=50, pattern=r"^[A-Za-z0-9-]+$"
    )
    ocds_publisher_name: str = Field(default="Innomatch", min_length=1, max_length=200)

    # The web forum (services/web): where people reach it (the sign-in links in its mails;
    # the request's own address when unset), whether its cookies are Secure (on in
    # production unless set), how long a session and a sign-in link live, and the Grafana
    # its operator page links to.
    web_public_url: str | None = None
    # How the forum reaches the other services, e.g. "http://{service}:{port}" (compose,
    # Kubernetes Services); unset: http://<INNOMATCH_HOST>:<the service's port>.
    web_backend_url_template: str | None = Field(default=None, pattern=r"^https?://.*\{service\}")
    web_secure_cookies: bool | None = None
    web_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    web_link_minutes: float = Field(default=15.0, gt=0, le=24 * 60)
    web_email_from: str = "Innomatch <forum@innomatch.local>"
    # How many processes serve the forum on its port (`innomatch serve web`); one core renders
    # about a thousand pages a second.
    web_workers: int = Field(default=2, ge=1, le=32)
    # How long the forum keeps a service's answer to a read (services/web/client.py); 0: never.
    web_read_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    grafana_url: str | None = None

    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_insecure_defaults(self) -> Settings:
        if (self.kafka_min_insync_replicas or 1) > self.kafka_replication_factor:
            raise ValueError(
                "INNOMATCH_KAFKA_MIN_INSYNC_REPLICAS cannot exceed INNOMATCH_KAFKA_REPLICATION_FACTOR"
            )
        if self.mode == "development":
            return self
        if self.token_secret.get_secret_value() == DEV_TOKEN_SECRET:
            raise ValueError(
                "INNOMATCH_TOKEN_SECRET is the development secret; set a secret of your own "
                "(or INNOMATCH_MODE=development)"
            )
        if len(self.token_secret.get_secret_value()) < 32:
            raise ValueError("INNOMATCH_TOKEN_SECRET must be at least 32 characters")
        token = self.operator_token.get_secret_value() if self.operator_token else ""
        if len(token) < 24:
            raise ValueError("INNOMATCH_OPERATOR_TOKEN must be set to at least 24 characters")
        return self

    def port_of(self, service: ServiceName) -> int:
        port: int = getattr(self, f"{service}_port")
        return port

    def url_of(self, service: ServiceName) -> str:
        return f"http://{self.host}:{self.port_of(service)}"

    @property
    def forum_url(self) -> str:
        """The web forum as people reach it (INNOMATCH_WEB_PUBLIC_URL), else its local address:
        the base of the links that alerts and sign-in mails carry."""
        return (self.web_public_url or self.url_of("web")).rstrip("/")

    def backend_url_of(self, service: ServiceName) -> str:
        """Where the web forum calls `service`: the template's URL, else url_of."""
        if self.web_backend_url_template:
            return self.web_backend_url_template.format(service=service, port=self.port_of(service))
        return self.url_of(service)
