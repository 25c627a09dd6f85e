"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import Artifact``; its default loader reads bytes, and
``default_writer`` (bytes, or text as UTF-8) is given as ``writer=``.
"""

from crystallize._artifact import Artifact, ArtifactLog, default_loader, default_writer

__all__ = ["Artifact", "ArtifactLog", "default_loader", "default_writer"]
