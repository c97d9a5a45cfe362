"""The system-config use cases (seed 001 section 3.5): read, partial update, secrets.

The stored document is validated by ``domain.market_config`` as a whole after a deep
merge, so a refused update changes nothing. Secrets (API keys, proxy URLs with their
credentials) travel in a separate ``secrets`` section of an update, are stored encrypted
with Fernet (seed 001 section 11.1, key ``KLINEWATCH_SECRET_KEY``) and are only ever
shown as "configured or not".

Each process keeps the current config in memory (requests read it without I/O) and
notices other processes' updates by polling the row's ``updated_at`` (``refresh``), so a
change takes effect everywhere within the poll interval, without a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.domain.market_config import (
    InvalidConfig,
    MarketDataConfig,
    apply_update,
    deep_merge,
    default_config,
    dump,
    validate_config,
)
from klinewatch.errors import ConfigurationError
from klinewatch.logs import get_logger
from klinewatch.storage.engine import transaction
from klinewatch.storage.system_config import StoredConfig, SystemConfigRepository

log = get_logger(__name__)

API_KEYS = ("coingecko_api_key", "price_source_api_key")
PROXIES = ("binance_proxy", "okx_proxy", "bybit_proxy", "bitget_proxy")
SECRET_NAMES: tuple[str, ...] = (*API_KEYS, *PROXIES)
SECTIONS = ("market_data", "volume_trap", "secrets")
PROXY_SCHEMES = frozenset({"http", "https", "socks5", "socks5h"})
MAX_SECRET_CHARS = 4096


@dataclass(frozen=True, slots=True)
class ConfigSnapshot:
    """One version of the config: the validated document and its typed market data."""

    document: dict[str, Any]
    market_data: MarketDataConfig
    encrypted_secrets: dict[str, str]
    updated_at: datetime
    volume_trap: dict[str, Any] | None = None


Listener = Callable[[ConfigSnapshot], None]


class SecretBox:
    """Fernet encryption of secrets; without a key nothing can be stored."""

    def __init__(self, key: SecretStr | None) -> None:
        self._fernet: Fernet | None = None
        if key is not None:
            try:
                self._fernet = Fernet(key.get_secret_value().encode())
            except (ValueError, TypeError):
                raise ConfigurationError(
                    "KLINEWATCH_SECRET_KEY is not a Fernet key (32 url-safe base64 bytes); "
                    "make one with: python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'",
                    field="secret_key",
                ) from None

    def encrypt(self, name: str, value: str) -> str:
        if self._fernet is None:
            raise InvalidConfig(
                f"secrets.{name}: KLINEWATCH_SECRET_KEY is not set, so secrets cannot be "
                "stored encrypted",
                field=f"secrets.{name}",
            )
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, name: str, token: str) -> str | None:
        if self._fernet is None:
            return None
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            log.error("secret_undecryptable", secret=name)  # key rotated without re-entry
            return None


class SystemConfigService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        secret_key: SecretStr | None,
        environment_secrets: Mapping[str, SecretStr | None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.box = SecretBox(secret_key)
        self.environment_secrets = dict(environment_secrets or {})
        self._snapshot: ConfigSnapshot | None = None
        self._listeners: list[Listener] = []

    # --- reading ----------------------------------------------------------------------

    @property
    def current(self) -> ConfigSnapshot:
        if self._snapshot is None:
            raise RuntimeError("SystemConfigService.load() has not run yet")
        return self._snapshot

    @property
    def market_data(self) -> MarketDataConfig:
        return self.current.market_data

    def on_change(self, listener: Listener) -> None:
        """Call ``listener`` with every new version (this process's or another's)."""
        self._listeners.append(listener)

    async def load(self) -> ConfigSnapshot:
        """Read the singleton, creating it with the seed's defaults on first start."""
        return self._install(await asyncio.to_thread(self._load))

    def _load(self) -> ConfigSnapshot:
        with transaction(self.sessions) as session:
            stored = SystemConfigRepository(session).get_or_create(default_config()["market_data"])
        return _snapshot(stored)

    async def refresh(self) -> bool:
        """Reload when another process changed the row; True if it did."""
        seen = self.current.updated_at
        changed = await asyncio.to_thread(self._changed_since, seen)
        if changed is None:
            return False
        self._install(changed)
        log.info("config_reloaded", updated_at=changed.updated_at.isoformat())
        return True

    def _changed_since(self, seen: datetime) -> ConfigSnapshot | None:
        with transaction(self.sessions) as session:
            repo = SystemConfigRepository(session)
            stamp = repo.updated_at()
            if stamp is None or stamp == seen:
                return None
            stored = repo.get()
        return None if stored is None else _snapshot(stored)

    def secret(self, name: str) -> str | None:
        """A secret in clear for the code that needs it: the config's, else the env's."""
        if name not in SECRET_NAMES:
            raise KeyError(name)
        token = self.current.encrypted_secrets.get(name)
        if token:
            value = self.box.decrypt(name, token)
            if value is not None:
                return value
        env = self.environment_secrets.get(name)
        return env.get_secret_value() if env is not None else None

    def public_view(self, current_exchange: str) -> dict[str, Any]:
        """What GET shows: the document, secrets as configured-or-not, never in clear."""
        snapshot = self.current
        secrets = {
            name: {
                "configured": bool(snapshot.encrypted_secrets.get(name))
                or self.environment_secrets.get(name) is not None,
                "source": "config"
                if snapshot.encrypted_secrets.get(name)
                else ("environment" if self.environment_secrets.get(name) is not None else None),
            }
            for name in SECRET_NAMES
        }
        return {
            "market_data": snapshot.document["market_data"],
            "volume_trap": snapshot.volume_trap,
            "secrets": secrets,
            "current_exchange": current_exchange,
            "last_updated": snapshot.updated_at,
        }

    # --- updating ---------------------------------------------------------------------

    async def update(self, body: object) -> ConfigSnapshot:
        """Apply a partial update or refuse it with ``InvalidConfig`` naming the field;
        a refused update writes nothing."""
        if not isinstance(body, Mapping):
            raise InvalidConfig("the update must be a JSON object", field="(root)")
        for section in body:
            if section not in SECTIONS:
                raise InvalidConfig(
                    f"{section}: unknown section; expected {' or '.join(SECTIONS)}",
                    field=str(section),
                )
        secrets = _checked_secrets(body.get("secrets"))
        market_update = body.get("market_data")
        if market_update is not None and not isinstance(market_update, Mapping):
            raise InvalidConfig("market_data: must be an object", field="market_data")
        trap_update = body.get("volume_trap")
        if trap_update is not None and not isinstance(trap_update, Mapping):
            raise InvalidConfig("volume_trap: must be an object", field="volume_trap")
        encrypted = {name: self.box.encrypt(name, v) for name, v in secrets.items() if v}
        snapshot = await asyncio.to_thread(
            self._write, market_update, secrets, encrypted, trap_update
        )
        log.info(
            "config_updated",
            fields=sorted(_leaves(market_update or {})),
            secrets=sorted(secrets),  # names only, never values
        )
        return self._install(snapshot)

    def _write(
        self,
        market_update: Mapping[str, Any] | None,
        secrets: Mapping[str, str | None],
        encrypted: Mapping[str, str],
        trap_update: Mapping[str, Any] | None = None,
    ) -> ConfigSnapshot:
        with transaction(self.sessions) as session:
            repo = SystemConfigRepository(session)
            repo.get_or_create(default_config()["market_data"])
            stored = repo.get(for_update=True)
            assert stored is not None
            document = _document(stored)
            if market_update is not None:
                document = apply_update(document, {"market_data": market_update})
            tokens = dict(stored.encrypted_secrets)
            for name, value in secrets.items():
                if value:
                    tokens[name] = encrypted[name]
                else:
                    tokens.pop(name, None)
            trap = None
            if trap_update is not None:
                trap = volume_trap_section(deep_merge(stored.volume_trap or {}, trap_update))
            saved = repo.save(document["market_data"], tokens, trap)
        return _snapshot(saved)

    def _install(self, snapshot: ConfigSnapshot) -> ConfigSnapshot:
        self._snapshot = snapshot
        for listener in self._listeners:
            listener(snapshot)
        return snapshot


def _document(stored: StoredConfig) -> dict[str, Any]:
    """The stored section over today's defaults (settings added by a newer version get
    their default), validated: a stored config that breaks a rule stops the process."""
    merged = deep_merge(default_config(), {"market_data": stored.market_data})
    return dump(validate_config(merged))


def _snapshot(stored: StoredConfig) -> ConfigSnapshot:
    document = _document(stored)
    return ConfigSnapshot(
        document=document,
        market_data=validate_config(document).market_data,
        encrypted_secrets={k: str(v) for k, v in stored.encrypted_secrets.items() if v},
        updated_at=stored.updated_at,
        volume_trap=volume_trap_section(stored.volume_trap or {}),
    )


def _checked_secrets(raw: object) -> dict[str, str | None]:
    """Names known, values strings (None or "" removes one), proxies real URLs."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidConfig("secrets: must be an object", field="secrets")
    checked: dict[str, str | None] = {}
    for name, value in raw.items():
        field = f"secrets.{name}"
        if name not in SECRET_NAMES:
            raise InvalidConfig(
                f"{field}: unknown secret; expected one of {', '.join(SECRET_NAMES)}",
                field=field,
            )
        if value is not None and not isinstance(value, str):
            raise InvalidConfig(f"{field}: must be a string or null", field=field)
        if value and (len(value) > MAX_SECRET_CHARS or value != value.strip()):
            raise InvalidConfig(f"{field}: too long or padded with spaces", field=field)
        if value and name in PROXIES:
            _check_proxy(field, value)
        checked[str(name)] = value or None
    return checked


def _check_proxy(field: str, value: str) -> None:
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
        parts = urlsplit("")
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname or not port_ok:
        raise InvalidConfig(
            f"{field}: not a proxy URL (scheme://[user:password@]host[:port], scheme one of "
            f"{', '.join(sorted(PROXY_SCHEMES))})",
            field=field,
        )


def _leaves(update: Mapping[str, Any], prefix: str = "market_data") -> list[str]:
    out: list[str] = []
    for key, value in update.items():
        path = f"{prefix}.{key}"
        out.extend(_leaves(value, path) if isinstance(value, Mapping) else [path])
    return out


def volume_trap_section(section: Mapping[str, Any]) -> dict[str, Any]:
    """The volume-trap thresholds validated by the core's own rules (spec volume-trap.md),
    complete with defaults; out of range is ``InvalidConfig`` naming ``volume_trap.<field>``."""
    from klinewatch.domain.volume_trap import VolumeTrapParams
    from klinewatch.errors import InvalidInput

    try:
        return VolumeTrapParams.from_mapping(dict(section)).to_mapping()
    except InvalidInput as e:
        field_name = f"volume_trap.{e.field or ''}".rstrip(".")
        raise InvalidConfig(f"volume_trap: {e.message}", field=field_name) from e
