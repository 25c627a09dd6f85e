"""crystallize-metadata: a ``metadata.json`` for every stored run.

Records what a run was (experiment id and name, replicates, conditions and
their treatment fingerprints, seeds, execution engine, versions of the
installed crystallize distributions, timestamps, status) and where its inputs
came from (upstream experiment, version and run id), so downstream
experiments can size themselves and the graph can tell when an input changed.
"""

from crystallize_metadata.plugin import METADATA_FILE, MetadataPlugin

__version__ = "0.1.0"

__all__ = ["MetadataPlugin", "METADATA_FILE", "__version__"]
