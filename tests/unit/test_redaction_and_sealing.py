from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from extensions.redaction import Redactor, sensitive_values
from worker.sealing import Sealer


def test_known_values_and_secret_shapes_are_masked() -> None:
    redactor = Redactor(["hunter2-long"])
    text = redactor.text("pw hunter2-long and Bearer abcdefghijklmnop and ptla_abcdef123 and sk_live_abcd1234")
    assert "hunter2-long" not in text
    assert "abcdefghijklmnop" not in text
    assert "ptla_abcdef123" not in text
    assert "sk_live_abcd1234" not in text


def test_sensitive_keys_are_masked_deeply() -> None:
    data = {"service": {"properties": {"password": "p@ss", "hostname": "h"}}, "items": [{"api_key": "k"}]}
    masked = Redactor().data(data)
    assert masked["service"]["properties"] == {"password": "***", "hostname": "h"}
    assert masked["items"][0]["api_key"] == "***"
    assert sorted(sensitive_values(data)) == ["k", "p@ss"]


def test_sealing_round_trip_and_wrong_key() -> None:
    sealer = Sealer(Fernet.generate_key().decode())
    token = sealer.seal("root-password")
    assert token is not None
    assert "root-password" not in token
    assert sealer.unseal(token) == "root-password"
    with pytest.raises(ValueError, match="does not match"):
        Sealer(Fernet.generate_key().decode()).unseal(token)
    assert Sealer(None).seal("x") is None
