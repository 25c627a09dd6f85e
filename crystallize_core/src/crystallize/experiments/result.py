"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import Result``.
"""

from crystallize._result import Result

__all__ = ["Result"]
