"""One Settings class. Every value can be set with a ``WORKCARD_*`` environment variable and the
defaults work out of the box: a SQLite database and key files under ``var/`` of the working directory."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WORKCARD_", extra="ignore")

    var_dir: Path = Path("var")
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # The address people and QR codes use to reach this server.
    base_url: str = ""
    # Cookie "Secure" flag: None means "on when base_url is https".
    cookie_secure: bool | None = None
    secret_key: str = ""
    session_hours: int = 8
    default_locale: str = "zh_CN"
    # argon2id cost: "standard" for production, "fast" for the test suite only.
    password_profile: str = "standard"  # noqa: S105 - a cost profile name, not a password
    login_max_failures: int = 5
    login_window_seconds: int = 900
    partner_rate_limit_per_minute: int = 600
    photo_max_bytes: int = 2_000_000
    photo_max_pixels: int = 20_000_000
    expiry_reminder_days: int = 30
    log_level: str = "INFO"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.var_dir / 'workcard.db').resolve()}"

    def resolved_base_url(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.resolved_base_url().startswith("https://")

    def resolved_secret_key(self) -> bytes:
        """The key that signs CSRF tokens. Shared by every server process: taken from the setting,
        else from ``var/secret_key`` (created once, owner-only)."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.var_dir / "secret_key"
        if not path.exists():
            from workcard.files import write_private

            self.var_dir.mkdir(parents=True, exist_ok=True)
            write_private(path, secrets.token_hex(32).encode(), replace=False)
        return path.read_text().strip().encode()


@lru_cache
def get_settings() -> Settings:
    return Settings()
