"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import Hypothesis``.
"""

from crystallize._hypothesis import Hypothesis

__all__ = ["Hypothesis"]
