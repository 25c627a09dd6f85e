"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``crystallize.plugins.plugins`` is where the crystallize-ml user guide imports
``ArtifactPlugin`` from; it resolves to the installed ``crystallize-artifacts``
(``from crystallize_artifacts import ArtifactPlugin``). Plugin authors want
:mod:`crystallize.plugin` (singular), not this package.
"""
