"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize.plugin``.

``from crystallize.plugin import BASELINE, REPLICATE_KEY, CONDITION_KEY, SEED_KEY``.
"""

from crystallize._context import BASELINE as BASELINE_CONDITION
from crystallize._context import CONDITION_KEY, REPLICATE_KEY
from crystallize._context import SEED_KEY as SEED_USED_KEY
from crystallize._store import METADATA_FILENAME

__all__ = ["METADATA_FILENAME", "BASELINE_CONDITION", "REPLICATE_KEY", "CONDITION_KEY", "SEED_USED_KEY"]
