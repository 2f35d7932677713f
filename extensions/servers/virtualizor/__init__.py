"""Virtualizor: placeholder until the integration lands (no operations, so no tasks are registered)."""

from pydantic import BaseModel

from extensions.base import ExtensionConfig, ServerExtension


class _Config(ExtensionConfig):
    pass


class _Product(BaseModel):
    pass


class Virtualizor(ServerExtension):
    slug = "virtualizor"
    display_name = "Virtualizor"
    Config = _Config
    ProductSettings = _Product
    operations = frozenset()
