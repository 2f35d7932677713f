"""The runtime: Celery app, settings, task factory, ledger, retries, events, dead letters, producer, CLI.

Import nothing heavy here: ``worker.client`` is used by producers that have no extension code.
"""
