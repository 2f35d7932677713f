"""Per-extension quirk tests."""
