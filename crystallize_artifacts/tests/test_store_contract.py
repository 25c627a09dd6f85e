"""LocalRunStore passes the store contract every storage plugin's store passes."""

from __future__ import annotations

from crystallize.testing import RunStoreContract
from crystallize_artifacts import ArtifactPlugin


class TestLocalRunStoreContract(RunStoreContract):
    def make_storage(self, tmp_path):
        return ArtifactPlugin(root_dir=tmp_path / "artifacts")


class TestVersionedLocalRunStoreContract(RunStoreContract):
    def make_storage(self, tmp_path):
        return ArtifactPlugin(root_dir=tmp_path / "artifacts", versioned=True)
