"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize._aggregation``.

Results are assembled by the core; ``ResultAggregator`` remains for 0.27
code that folds replicate results by hand.
"""

from crystallize._aggregation import ResultAggregator

__all__ = ["ResultAggregator"]
