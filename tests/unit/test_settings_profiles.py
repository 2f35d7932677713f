from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from extensions.errors import InvalidConfig, UnknownConnection
from extensions.registry import extension_class
from worker.profiles import Profiles
from worker.settings import Settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "connections.toml"
    path.write_text(text)
    return path


def test_profiles_load_with_environment_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANEL_KEY", "ptla_from_environment_1")
    path = write(
        tmp_path,
        '[connections.panel]\nextension = "servers.pterodactyl"\n'
        'host = "https://panel.example/"\napi_key = "${PANEL_KEY}"\n',
    )
    profiles = Profiles.load(path)
    profile = profiles.get("panel", extension_class("servers", "pterodactyl"))
    assert profile.config.api_key.get_secret_value() == "ptla_from_environment_1"  # type: ignore[attr-defined]
    assert profiles.secret_values() == ["ptla_from_environment_1"]
    with pytest.raises(UnknownConnection):
        profiles.get("other", extension_class("servers", "pterodactyl"))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[connections.p]\nextension = "servers.pterodactyl"\nhost = "https://x"\n', "'p'"),
        ('[connections.p]\nextension = "servers.nope"\n', "servers.nope"),
        ('[connections.p]\nhost = "x"\n', "extension"),
        (
            '[connections.p]\nextension = "servers.pterodactyl"\nhost = "https://x"\napi_key = "${UNSET_VAR_X}"\n',
            "UNSET_VAR_X",
        ),
        ("not toml [", "TOML"),
    ],
)
def test_a_bad_profile_names_the_profile_and_field(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        Profiles.load(write(tmp_path, text))
    assert needle in info.value.message


def test_missing_field_is_named(tmp_path: Path) -> None:
    text = '[connections.p]\nextension = "servers.pterodactyl"\nhost = "https://x"\n'
    with pytest.raises(InvalidConfig, match="api_key"):
        Profiles.load(write(tmp_path, text))


def test_empty_file_means_no_profiles(tmp_path: Path) -> None:
    assert len(Profiles.load(write(tmp_path, ""))) == 0
    assert len(Profiles.load(None)) == 0


def test_settings_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTER_BROKER_URL", "amqp://guest@localhost//")
    with pytest.raises(ValidationError, match="PAYMENTER_RESULT_BACKEND"):
        Settings()
    monkeypatch.setenv("PAYMENTER_RESULT_BACKEND", "redis://localhost/1")
    assert Settings().backend_url == "redis://localhost/1"
    monkeypatch.setenv("PAYMENTER_RESULT_KEY", "not-a-key")
    with pytest.raises(ValidationError, match="Fernet"):
        Settings()
    monkeypatch.delenv("PAYMENTER_RESULT_KEY")
    monkeypatch.setenv("PAYMENTER_VISIBILITY_TIMEOUT", "60")
    settings = Settings()
    assert settings.max_countdown == 30
    assert settings.lease_ms == 30_000
