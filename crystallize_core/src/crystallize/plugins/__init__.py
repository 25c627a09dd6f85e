"""Import paths for plugins shipped with, or installed next to, the core.

``crystallize.plugins.plugins`` is where the user guide imports
``ArtifactPlugin`` from; it resolves to the installed ``crystallize-artifacts``.
"""
