"""Other extensions: notifications, affiliates, announcements."""
