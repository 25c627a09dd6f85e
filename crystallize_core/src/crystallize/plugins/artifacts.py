"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize_artifacts``.

``from crystallize_artifacts import load_metrics, load_all_metrics`` (resolved on
first use; without crystallize-artifacts, ``ImportError`` saying what to install).
Newer code reads whole results: ``crystallize_artifacts.load_result``.
"""

from crystallize._optional import module_getattr

__all__: list[str] = []  # load_metrics, load_all_metrics: lazily

__getattr__ = module_getattr(__name__, ("load_metrics", "load_all_metrics"))
