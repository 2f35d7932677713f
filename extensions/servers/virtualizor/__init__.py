"""Virtualizor: one VPS per service on a Virtualizor master through its Admin API."""

from extensions.servers.virtualizor.extension import Virtualizor

__all__ = ["Virtualizor"]
