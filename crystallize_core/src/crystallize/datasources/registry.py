"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import register_datasource, get_datasource, list_datasources``.
"""

from crystallize._source_registry import clear_registry, get_datasource, list_datasources, register_datasource

__all__ = ["register_datasource", "get_datasource", "list_datasources", "clear_registry"]
