"""Compatibility path for crystallize-ml 0.27 code; the real home is the step cache, ``crystallize._cache``.

Mark steps ``cacheable``; the cache folder is ``$CRYSTALLIZE_CACHE_DIR``
(else ``.cache``). These functions remain for 0.27 code that used them.
"""

from crystallize._cache import cache_dir, cache_path, compute_hash, load_cache, store_cache

__all__ = ["compute_hash", "cache_dir", "cache_path", "load_cache", "store_cache"]
