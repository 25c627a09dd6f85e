"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import Artifact``; ``ctx.artifacts`` is an ``ArtifactLog``.
"""

from crystallize._artifact import Artifact, ArtifactLog

__all__ = ["ArtifactLog", "Artifact"]
