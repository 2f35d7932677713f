"""The configured app with every task registered (``celery -A worker.celery_app`` works too)."""

from __future__ import annotations

from worker.app import make_celery
from worker.settings import get_settings
from worker.tasks import register_tasks

app = make_celery(get_settings())
register_tasks(app)
