"""Vaki's configuration: environment variables with the ``VAKI_`` prefix, or a ``.env`` file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    """Where the SQLite file and runtime state live when nothing else is configured."""
    return Path.cwd() / "var"


class Settings(BaseSettings):
    """Every setting of one Vaki instance; loaded once by the CLI, passed to ``create_app``."""

    model_config = SettingsConfigDict(
        env_prefix="VAKI_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Directory for the SQLite database and runtime state.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; SQLite file in the data directory when unset. "
        "PostgreSQL: postgresql://user@host:5432/vaki",
    )
    http_host: str = Field(default="127.0.0.1", description="Address the web server binds to.")
    http_port: int = Field(default=8000, ge=0, le=65535, description="Port of the web server.")
    mqtt_url: str | None = Field(
        default=None,
        description="External MQTT broker, e.g. mqtt://vaki:secret@127.0.0.1:1883. "
        "When unset, Vaki starts its embedded broker.",
    )
    mqtt_embedded_host: str = Field(
        default="127.0.0.1",
        description="Address the embedded broker listens on (0.0.0.0 to reach it from homes).",
    )
    mqtt_embedded_port: int = Field(
        default=1883,
        ge=0,
        le=65535,
        description="Preferred port of the embedded broker; a free one is taken if it is busy.",
    )
    mqtt_embedded_broker: Literal["auto", "mosquitto", "amqtt"] = Field(
        default="auto",
        description="Which broker Vaki runs itself: a private Mosquitto child process "
        "(auto: when the mosquitto program is installed), or the embedded amqtt.",
    )
    mqtt_client_id: str = Field(
        default="vaki-server-1",
        description="Stable MQTT client id of this instance (its persistent session).",
    )
    mqtt_shared_group: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="MQTT 5 shared-subscription group, so several instances split ingestion "
        "(Mosquitto, EMQX; not the embedded broker).",
    )
    mqtt_session_expiry_s: int = Field(
        default=86400,
        ge=60,
        description="How long the broker keeps this instance's session and queued messages "
        "while it is away (MQTT 5); keep it at an hour or more in production.",
    )
    mqtt_shared_session_expiry_s: int = Field(
        default=5,
        ge=0,
        description="Session expiry of this instance's shared-subscription (readings) link: "
        "short, so the broker stops handing a dead instance its share within seconds "
        "(devices resend what was not acked). Alarm events are never shared.",
    )
    ingest_workers: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Processes that ingest readings on an MQTT 5 shared subscription, so one "
        "box uses every core (0: in the main process; needs VAKI_MQTT_URL).",
    )
    mqtt_protocol: Literal["auto", "5", "3.1.1"] = Field(
        default="auto",
        description="MQTT protocol version; auto tries 5 and falls back to 3.1.1.",
    )
    public_url: str | None = Field(
        default=None,
        description="The console's address as staff reach it, for links in notifications.",
    )
    smtp_host: str | None = Field(default=None, description="SMTP server for e-mail alerts.")
    smtp_port: int = Field(default=587, description="SMTP port.")
    smtp_username: str | None = Field(default=None, description="SMTP login.")
    smtp_password: str | None = Field(default=None, description="SMTP password.")
    smtp_starttls: bool = Field(default=True, description="Upgrade the SMTP connection to TLS.")
    smtp_sender: str = Field(default="vaki@localhost", description="From address of e-mails.")
    sms_gateway_url: str | None = Field(
        default=None, description="HTTP endpoint that sends SMS (JSON POST: to, from, text)."
    )
    sms_gateway_token: str | None = Field(default=None, description="Bearer token of it.")
    sms_sender: str = Field(default="Vaki", description="Sender name of SMS.")
    vapid_private_key: str | None = Field(
        default=None, description="Web push key (vaki push keys prints a pair)."
    )
    vapid_subject: str = Field(
        default="mailto:ops@example.org", description="Contact the push services may use."
    )
    escalation_lease_s: float = Field(
        default=15.0,
        ge=1,
        description="How long an instance holds an escalation step it is delivering (renewed "
        "meanwhile); a dead instance's steps are taken over after this.",
    )
    notify_deadline_s: float = Field(
        default=8.0,
        gt=0,
        description="How long one notification may take before it counts as failed (and is "
        "retried later); the next tier does not wait longer than this.",
    )
    escalation_fallback: str = Field(
        default="",
        description="Who is told, besides the coordinators, when every tier was tried and "
        "nobody acknowledged: e-mail addresses and E.164 phone numbers, comma-separated.",
    )
    database_connect_timeout_s: float = Field(
        default=5.0, gt=0, description="How long a PostgreSQL connection attempt may take."
    )
    database_statement_timeout_s: float = Field(
        default=30.0,
        ge=0,
        description="How long one PostgreSQL statement may run (0: no limit).",
    )
    escalation_sweep_s: float = Field(
        default=2.0,
        gt=0,
        description="How often due escalation steps and unhandled alarm events are looked for.",
    )
    rules_sweep_s: float = Field(
        default=60.0, gt=0, description="How often silent devices and quiet homes are checked."
    )
    checkin_sweep_s: float = Field(
        default=5.0,
        gt=0,
        description="How often due check-in prompts and closed windows are looked for "
        "(each slot also wakes the service at its exact time).",
    )
    call_request_timeout_min: int = Field(
        default=10,
        ge=1,
        description="A resident's call request nobody takes within this many minutes "
        "becomes an alert that escalates.",
    )
    session_idle_timeout_min: int = Field(
        default=30,
        ge=1,
        le=24 * 60,
        description="A console session unused this many minutes ends; the staff member "
        "signs in again.",
    )
    session_absolute_timeout_h: float = Field(
        default=12.0,
        gt=0,
        le=7 * 24,
        description="A console session ends this many hours after sign-in however busy it is.",
    )
    login_max_failures: int = Field(
        default=5,
        ge=1,
        description="Failed sign-ins in a row for one username from one address before "
        "that address must wait (others can still sign in as that staff member).",
    )
    login_max_failures_per_address: int = Field(
        default=50,
        ge=1,
        description="Failed sign-ins from one client address within the lockout window before "
        "further tries are refused (a ward behind one address shares it).",
    )
    login_lockout_min: int = Field(
        default=15,
        ge=1,
        description="The first wait, in minutes, after too many failed sign-ins from one "
        "address for one username (doubling with each further failure), and the window over "
        "which an address's failures are counted.",
    )
    api_token_lifetime_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="How long a new API token works before it expires.",
    )
    demo_homes: int = Field(
        default=0,
        ge=0,
        le=25,
        description="Simulated homes of the demo world to run in the background "
        "(vaki serve --demo runs all 25).",
    )
    demo_speed: float = Field(
        default=1.0,
        gt=0,
        le=600,
        description="How much faster than the clock the simulated homes live (1: their day "
        "is the real day; faster shows more, but their days drift from the clock).",
    )
    emergency_number: str = Field(
        default="112",
        pattern=r"^[0-9+ ]{2,16}$",
        description="The number the tablet tells the resident to call when it cannot reach "
        "the care team.",
    )
    tablet_ring_s: int = Field(
        default=120,
        ge=15,
        description="How long a booked call rings on the tablet before it tells the resident "
        "the care team will call back.",
    )
    video_media_mode: Literal["relay", "p2p"] = Field(
        default="relay",
        description="relay: the server is every participant's WebRTC peer and forwards their "
        "media; p2p: browsers connect to each other (up to 4) and the server only signals.",
    )
    video_secret: str | None = Field(
        default=None,
        min_length=16,
        description="Key that signs room tokens; set the same on every instance. Unset: "
        "derived from the instance secret kept in the database (the same everywhere).",
    )
    video_token_ttl_s: int = Field(
        default=120, ge=10, le=900, description="How long a room token admits its holder."
    )
    video_ice_urls: str = Field(
        default="",
        description="STUN and TURN servers for browsers, comma-separated, e.g. "
        "stun:turn.example.org:3478,turn:turn.example.org:3478?transport=udp",
    )
    video_turn_secret: str | None = Field(
        default=None,
        description="coturn's static-auth-secret: TURN credentials are derived from it "
        "(TURN REST convention) and expire.",
    )
    video_turn_ttl_s: int = Field(
        default=3600, ge=60, description="How long TURN credentials handed to a browser last."
    )
    video_max_participants: int = Field(
        default=4, ge=2, le=8, description="Most participants in one consultation's call."
    )
    video_quality_interval_s: float = Field(
        default=5.0, gt=0, description="How often call quality is sampled per participant."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="json for log collectors, console for people; auto picks."
    )
    log_level: str = Field(default="INFO", description="Python log level name.")

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str | None) -> str | None:
        """Pick the async driver for the plain URLs people write."""
        if value is None or not value.strip():
            return None
        value = value.strip()
        for plain, driver in (
            ("postgresql://", "postgresql+psycopg://"),
            ("postgres://", "postgresql+psycopg://"),
            ("sqlite:///", "sqlite+aiosqlite:///"),
        ):
            if value.startswith(plain):
                return driver + value.removeprefix(plain)
        return value

    @property
    def effective_database_url(self) -> str:
        """The database URL in use: the configured one or the SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'vaki.db'}"

    @property
    def uses_embedded_broker(self) -> bool:
        """True when Vaki runs its own MQTT broker."""
        return not self.mqtt_url
