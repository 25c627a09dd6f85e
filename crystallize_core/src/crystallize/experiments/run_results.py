"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize._aggregation``.

0.27's per-replicate result record, used with ``ResultAggregator``.
"""

from crystallize._aggregation import ReplicateResult

__all__ = ["ReplicateResult"]
