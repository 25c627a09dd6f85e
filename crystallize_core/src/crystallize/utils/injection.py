"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import inject_from_ctx``.
"""

from crystallize._decorators import inject_from_ctx

__all__ = ["inject_from_ctx"]
