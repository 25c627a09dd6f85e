"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import Treatment``.
"""

from crystallize._treatment import Treatment

__all__ = ["Treatment"]
