"""Plugin discovery reads metadata folders itself; it must find what importlib_metadata finds."""

from __future__ import annotations

import sys
import zipfile

import importlib_metadata
import pytest
from fakedist import make_distribution

from crystallize import _entry_points
from crystallize._entry_points import EntryPoint, entry_points, installed_version, name_and_version


@pytest.fixture
def isolated_path(monkeypatch, tmp_path):
    """``sys.path`` of one empty folder (plus the standard library, to import anything)."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr(sys, "path", [str(site), *(p for p in sys.path if "site-packages" not in p)])
    installed_version.cache_clear()
    yield site
    installed_version.cache_clear()


@pytest.mark.parametrize("group", ["crystallize.plugins", "crystallize.commands", "console_scripts", "pytest11"])
def test_finds_what_the_library_finds_in_this_environment(group):
    ours = sorted((ep.name, ep.value, ep.group) for ep, _ in entry_points(group))
    theirs = sorted((ep.name, ep.value, ep.group) for ep in importlib_metadata.entry_points(group=group))
    assert ours == theirs
    assert ours or group in ("crystallize.commands",)


@pytest.mark.parametrize("name", ["pluggy", "attrs", "PyYAML", "pyyaml", "crystallize_core", "Crystallize-Core"])
def test_installed_version_matches_the_library(name):
    installed_version.cache_clear()
    assert installed_version(name) == importlib_metadata.version(name)


def test_a_folder_on_sys_path_is_scanned_in_order_with_its_headers(isolated_path, tmp_path, monkeypatch):
    def library(*args):
        raise AssertionError("folders on sys.path are read without the library, even once it is imported")

    monkeypatch.setattr(_entry_points, "_library_entry_points", library)
    monkeypatch.setattr(_entry_points, "_library_version", library)
    make_distribution(
        isolated_path, "crystallize-first", "1.0", {"one": "first_mod:plugin"}, {"first_mod": "plugin = 1"}
    )
    second = tmp_path / "second"
    make_distribution(second, "Crystallize.Second", "2.5", {"two": "second_mod:obj.attr"}, {"second_mod": ""})
    sys.path.append(str(second))
    found = entry_points("crystallize.plugins")
    assert [(ep.name, ep.value) for ep, _ in found] == [("one", "first_mod:plugin"), ("two", "second_mod:obj.attr")]
    assert [name_and_version(dist) for _, dist in found] == [
        ("crystallize-first", "1.0"),
        ("Crystallize.Second", "2.5"),
    ]
    assert found[0][0].load() == 1
    assert installed_version("crystallize_second") == "2.5"  # names compare normalised
    assert installed_version("crystallize-missing") is None


def test_only_the_requested_section_counts_and_extras_are_ignored_on_load(isolated_path):
    info = isolated_path / "multi-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Name: multi\nVersion: 1.0\n\nName: not-a-header\n")
    (info / "entry_points.txt").write_text(
        "# comment\n[console_scripts]\nmulti = multi_mod:main\n\n"
        "[crystallize.plugins]\n; another comment\nplug = multi_mod:Plugin [extra1, extra2]\n"
        "[other]\nplug2 = multi_mod:other\n"
    )
    (isolated_path / "multi_mod.py").write_text("class Plugin:\n    pass\n")
    found = entry_points("crystallize.plugins")
    assert [ep for ep, _ in found] == [EntryPoint("plug", "multi_mod:Plugin [extra1, extra2]", "crystallize.plugins")]
    assert found[0][0].load().__name__ == "Plugin"
    assert name_and_version(found[0][1]) == ("multi", "1.0")  # the headers end at the blank line


def test_egg_info_folders_count(isolated_path):
    info = isolated_path / "legacy_plugin.egg-info"
    info.mkdir()
    (info / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: legacy-plugin\nVersion: 0.9\n")
    (info / "entry_points.txt").write_text("[crystallize.plugins]\nold = legacy:plugin\n")
    found = entry_points("crystallize.plugins")
    assert [(ep.name, name_and_version(dist)) for ep, dist in found] == [("old", ("legacy-plugin", "0.9"))]
    assert installed_version("legacy_plugin") == "0.9"


def test_missing_and_file_entries_on_sys_path_are_harmless(isolated_path, tmp_path):
    (tmp_path / "notes.txt").write_text("not a zip")
    sys.path[:0] = [str(tmp_path / "does-not-exist"), str(tmp_path / "notes.txt")]
    make_distribution(isolated_path, "crystallize-x", "1.0", {"x": "x_mod:p"}, {"x_mod": "p = 2"})
    assert [ep.name for ep, _ in entry_points("crystallize.plugins")] == ["x"]


def test_a_zip_file_on_sys_path_is_read_by_the_library(isolated_path, tmp_path):
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped_plugin-3.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: zipped-plugin\nVersion: 3.0\n")
        z.writestr(
            "zipped_plugin-3.0.dist-info/entry_points.txt", "[crystallize.plugins]\nzipped = zipped_mod:plugin\n"
        )
        z.writestr("zipped_mod.py", "plugin = 'from the zip'\n")
    sys.path.append(str(archive))
    found = entry_points("crystallize.plugins")
    assert [(ep.name, ep.value) for ep, _ in found] == [("zipped", "zipped_mod:plugin")]
    assert found[0][0].load() == "from the zip"
    assert installed_version("zipped-plugin") == "3.0"


def test_an_import_hook_that_provides_distributions_is_asked(isolated_path, monkeypatch):
    class Hooked(importlib_metadata.Distribution):
        def read_text(self, filename):
            return {
                "METADATA": "Metadata-Version: 2.1\nName: hooked\nVersion: 7.0\n",
                "entry_points.txt": "[crystallize.plugins]\nhooked = json:dumps\n",
            }.get(filename)

        def locate_file(self, path):  # pragma: no cover - not needed here
            raise NotImplementedError

    class Finder:
        @staticmethod
        def find_spec(*args, **kwargs):
            return None

        @staticmethod
        def find_distributions(context=None):
            name = getattr(context, "name", None)
            return iter([Hooked()]) if name in (None, "hooked") else iter([])

    monkeypatch.setattr(sys, "meta_path", [Finder, *sys.meta_path])
    found = entry_points("crystallize.plugins")
    assert [(ep.name, ep.value) for ep, _ in found] == [("hooked", "json:dumps")]
    assert found[0][0].load() is __import__("json").dumps
    assert installed_version("hooked") == "7.0"


def test_discovery_does_not_import_the_metadata_libraries():
    import subprocess

    code = (
        "import sys; from crystallize import _entry_points as e; e.entry_points('crystallize.plugins');"
        "e.installed_version('pluggy');"
        "print(sorted(m for m in ('importlib_metadata', 'importlib.metadata', 'email') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_entry_point_records_compare_by_value():
    a = EntryPoint("n", "m:o", "g")
    assert a == EntryPoint("n", "m:o", "g") and hash(a) == hash(EntryPoint("n", "m:o", "g"))
    assert a != EntryPoint("n", "m:o", "h") and "m:o" in repr(a)
    assert _entry_points.Distribution("/x").read_text("METADATA") is None


def test_a_distribution_installed_after_the_first_look_is_found(isolated_path):
    assert entry_points("crystallize.plugins") == []
    make_distribution(isolated_path, "crystallize-late", "1.0", {"late": "late_mod:p"}, {"late_mod": "p = 3"})
    assert [ep.name for ep, _ in entry_points("crystallize.plugins")] == ["late"]
    assert installed_version("crystallize-late") == "1.0"
