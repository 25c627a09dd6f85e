"""LocalRunStore passes the store contract every storage plugin's store passes."""

from __future__ import annotations

from crystallize.testing import RunStoreContract
from crystallize_artifacts import ArtifactPlugin


class TestLocalRunStoreContract(RunStoreContract):
    digest_algorithm = "blake3"

    def make_storage(self, tmp_path):
        return ArtifactPlugin(root_dir=tmp_path / "artifacts")


class TestVersionedLocalRunStoreContract(RunStoreContract):
    digest_algorithm = "blake3"

    def make_storage(self, tmp_path):
        return ArtifactPlugin(root_dir=tmp_path / "artifacts", versioned=True)
