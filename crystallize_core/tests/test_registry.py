import json
import subprocess
import sys
import textwrap
import warnings

import pytest
from core_helpers import numbers, total
from fakedist import COUNTER, make_distribution

from crystallize import Experiment, Pipeline, PluginError, SeedPlugin, _registry, hookimpl
from crystallize._registry import installed_plugins, load_failures, resolve_plugins

SCRIPT = textwrap.dedent(
    """
    import json, random
    from crystallize import Experiment, Pipeline, data_source, pipeline_step

    @data_source
    def src(ctx):
        return 1

    @pipeline_step()
    def step(data, ctx):
        return data

    result = Experiment(src(), Pipeline([step()])).run()
    print(json.dumps(result.metrics.baseline.metrics))
    """
)


@pytest.fixture
def third_party(tmp_path):
    return make_distribution(
        tmp_path / "site",
        "crystallize-thirdparty",
        "0.3.1",
        {"counter": "thirdparty_plugin:plugin"},
        {"thirdparty_plugin": COUNTER},
    )


def _env(site, **extra):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYSTALLIZE_")}
    env["PYTHONPATH"] = str(site)
    env.update(extra)
    return env


def test_installed_third_party_plugin_runs_without_configuration(third_party):
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=_env(third_party), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"seen_by_plugin": ["step"]}


def test_autoload_can_be_disabled(third_party):
    env = _env(third_party, CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {}


def test_cli_lists_the_plugin_with_distribution_and_version(third_party):
    out = subprocess.run(
        [sys.executable, "-m", "crystallize", "plugins", "--json"],
        env=_env(third_party),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    assert rows["counter"]["distribution"] == "crystallize-thirdparty"
    assert rows["counter"]["version"] == "0.3.1"
    assert rows["counter"]["hooks"] == ["after_step"]
    assert rows["serial-execution"]["source"] == "built-in"
    text = subprocess.run(
        [sys.executable, "-m", "crystallize", "plugins"], env=_env(third_party), capture_output=True, text=True
    ).stdout
    assert "counter  (crystallize-thirdparty 0.3.1, entry point)" in text


@pytest.fixture
def autoload(monkeypatch):
    """Autoload in this process, restricted by an allow-list to the test's own dists."""

    def enable(site, allow):
        monkeypatch.syspath_prepend(str(site))
        monkeypatch.delenv("CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD", raising=False)
        monkeypatch.setenv("CRYSTALLIZE_LOAD_PLUGINS", allow)
        _registry.reset_autoload()

    return enable


def test_allow_list_accepts_entry_point_or_distribution_names(third_party, autoload, monkeypatch):
    autoload(third_party, "counter")
    assert [p.name for p in installed_plugins()] == ["counter"]
    monkeypatch.setenv("CRYSTALLIZE_LOAD_PLUGINS", "crystallize_thirdparty")
    _registry.reset_autoload()
    assert [p.name for p in installed_plugins()] == ["counter"]
    monkeypatch.setenv("CRYSTALLIZE_LOAD_PLUGINS", "")
    _registry.reset_autoload()
    assert installed_plugins() == []


def test_block_list_wins(third_party, autoload, monkeypatch):
    autoload(third_party, "counter")
    monkeypatch.setenv("CRYSTALLIZE_DISABLE_PLUGINS", "counter")
    _registry.reset_autoload()
    assert installed_plugins() == []


BROKEN = {
    "import_error": "raise ImportError('no module named torchish')",
    "bad_args": """
        from crystallize import hookimpl
        class P:
            @hookimpl
            def after_step(self, stepp):
                pass
        plugin = P()
    """,
    "unknown_hook": """
        from crystallize import hookimpl
        class P:
            @hookimpl
            def after_stepp(self, step):
                pass
        plugin = P()
    """,
    "no_hooks": """
        class P:
            def after_step(self, step):
                pass
        plugin = P()
    """,
}


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("import_error", "failed to load: ImportError: no module named torchish"),
        ("bad_args", "invalid hook implementation"),
        ("unknown_hook", "invalid hook implementation"),
        ("no_hooks", "implements no crystallize hooks"),
    ],
)
def test_broken_plugin_is_reported_with_its_distribution_and_skipped(tmp_path, autoload, monkeypatch, module, expected):
    site = make_distribution(
        tmp_path / "site", "crystallize-broken", "1.2.3", {"broken": f"{module}:plugin"}, {module: BROKEN[module]}
    )
    autoload(site, "broken")
    with pytest.warns(_registry.PluginWarning) as caught:
        assert installed_plugins() == []
    message = str(caught[0].message)
    assert "plugin 'broken'" in message and "crystallize-broken 1.2.3" in message and expected in message
    assert load_failures() and expected in load_failures()[0]
    # runs still work
    assert Experiment(numbers(), Pipeline([total()])).run().ok

    monkeypatch.setenv("CRYSTALLIZE_STRICT_PLUGINS", "1")
    _registry.reset_autoload()
    with pytest.raises(PluginError, match="crystallize-broken 1.2.3"):
        installed_plugins()


def test_a_plugin_replaces_the_earlier_layers_plugin_of_the_same_name_only(third_party, autoload):
    autoload(third_party, "counter")
    from thirdparty_plugin import StepCounter

    (installed,) = [i for i in resolve_plugins() if i.name == "counter"]
    assert installed.source == "entry point" and installed.distribution == "crystallize-thirdparty"

    # Passed with the installed plugin's name: it takes the installed one's place (and distribution).
    named = type("Named", (), {"plugin_name": "counter", "after_run": hookimpl(lambda self: None)})()
    (active,) = [i for i in resolve_plugins([named]) if i.name == "counter"]
    assert active.plugin is named and active.source == "experiment"
    assert (active.distribution, active.version) == ("crystallize-thirdparty", "0.3.1")

    # Same class, another name: nothing is replaced; both are active.
    mine = StepCounter()
    names = [i.name for i in resolve_plugins([mine])]
    assert names.count("counter") == 1 and names.count("StepCounter") == 1

    # A registered plugin replaces an installed one of its name, and is replaced by a passed one.
    from crystallize.testing import plugin_registered

    registered = type("Registered", (), {"plugin_name": "counter", "after_run": hookimpl(lambda self: None)})()
    with plugin_registered(registered):
        assert [i.plugin for i in resolve_plugins() if i.name == "counter"] == [registered]
        assert [i.plugin for i in resolve_plugins([named]) if i.name == "counter"] == [named]
        with pytest.raises(PluginError, match="a plugin named 'counter' is already registered"):
            _registry.register_plugin(named)


def test_a_plugin_is_registered_under_its_own_name(third_party, autoload):
    autoload(third_party, "counter")
    exp = Experiment(numbers(), Pipeline([total()]), plugins=[SeedPlugin(1)])
    pm = exp._plugins().manager
    assert sorted(name for name, _ in pm.list_name_plugin()) == ["counter", "seed", "serial-execution"]


def test_two_installed_plugins_with_one_name_keep_the_first_and_warn(tmp_path, autoload, monkeypatch):
    for dist in ("one", "two"):
        site = tmp_path / dist
        make_distribution(
            site, f"crystallize-{dist}", "1.0", {"twin": f"{dist}_plugin:plugin"}, {f"{dist}_plugin": COUNTER}
        )
        monkeypatch.syspath_prepend(str(site))
    autoload(tmp_path / "one", "twin")
    with pytest.warns(_registry.PluginWarning, match="is named 'twin' like the plugin from crystallize-"):
        loaded = installed_plugins()
    assert [i.name for i in loaded] == ["twin"]
    assert "plugin names must be unique" in load_failures()[0]


def test_plugins_are_per_experiment():
    seen = []

    class Spy:
        @hookimpl
        def before_run(self, experiment):
            seen.append(experiment.name)

    spy = Spy()
    Experiment(numbers(), Pipeline([total()]), plugins=[spy], name="with").run()
    Experiment(numbers(), Pipeline([total()]), name="without").run()
    assert seen == ["with"]


def test_bad_plugin_objects_passed_in_python_are_clear_errors():
    class NoHooks:
        pass

    with pytest.raises(PluginError, match="two plugins named 'seed'"):
        Experiment(numbers(), Pipeline([total()]), plugins=[SeedPlugin(1), SeedPlugin(2)]).run()

    class Typo:
        @hookimpl
        def before_runn(self, run):
            pass

    with pytest.raises(PluginError, match="before_runn"):
        Experiment(numbers(), Pipeline([total()]), plugins=[Typo()]).run()
    plugin = SeedPlugin(1)
    with pytest.raises(PluginError, match="two plugins named 'seed'"):
        Experiment(numbers(), Pipeline([total()]), plugins=[plugin, plugin]).run()
    assert NoHooks


def test_hook_tracing_is_opt_in(monkeypatch, caplog):
    import logging

    monkeypatch.setenv("CRYSTALLIZE_TRACE_HOOKS", "1")
    with caplog.at_level(logging.DEBUG, logger="crystallize.hooks"):
        Experiment(numbers(), Pipeline([total()])).run()
    assert "execute_replicates" in caplog.text


def test_autoload_happens_once_per_process(third_party, autoload):
    autoload(third_party, "counter")
    first = installed_plugins()
    assert installed_plugins()[0].plugin is first[0].plugin
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _registry.generation() == _registry.generation()


def test_installed_plugins_only_pins_autoloading_for_a_block(third_party, monkeypatch):
    import os

    from crystallize.testing import installed_plugins_only

    monkeypatch.syspath_prepend(str(third_party))
    before = os.environ.get("CRYSTALLIZE_LOAD_PLUGINS")
    with installed_plugins_only("counter"):
        assert [p.name for p in installed_plugins()] == ["counter"]
        with installed_plugins_only():
            assert installed_plugins() == []
        assert [p.name for p in installed_plugins()] == ["counter"]
    assert os.environ.get("CRYSTALLIZE_LOAD_PLUGINS") == before


def test_hook_options_read_per_class_are_what_pluggy_reads():
    """The registry reads a class's hook markers once, in one pass; pluggy reads them per attribute."""
    import pluggy

    from crystallize import SerialExecution, hookimpl
    from crystallize._dispatch import PROJECT
    from crystallize._registry import _new_pm

    class Base:
        @hookimpl
        def after_step(self, step, ctx):
            pass

        @hookimpl(trylast=True)
        def before_run(self, experiment, run):
            pass

    class Child(Base):
        before_run = None  # shadows the inherited hook: not a hook any more

        @staticmethod
        @hookimpl
        def after_run(run, result):
            pass

        @hookimpl(tryfirst=True)
        def on_replicate_outcome(self, run, outcome):
            pass

        @property
        def noisy(self):
            raise AssertionError("a property is never evaluated")

    class Wrapped(Base):
        @hookimpl
        @classmethod
        def after_run(cls, run, result):
            pass

    plugins = [Base(), Child(), Wrapped(), SerialExecution(), SeedPlugin()]
    for name in ("crystallize_artifacts:ArtifactPlugin", "crystallize_metadata:MetadataPlugin"):
        module, _, attr = name.partition(":")
        cls = getattr(pytest.importorskip(module), attr)
        plugins.append(cls() if attr != "ArtifactPlugin" else cls(root_dir="unused"))
    ours, reference = _new_pm(), pluggy.PluginManager(PROJECT)
    for plugin in plugins:
        for attr in dir(plugin):
            assert ours.parse_hookimpl_opts(plugin, attr) == reference.parse_hookimpl_opts(plugin, attr), (plugin, attr)
    child = ours.parse_hookimpl_opts(Child(), "on_replicate_outcome")
    assert child is not None and child["tryfirst"] is True
    assert ours.parse_hookimpl_opts(Child(), "before_run") is None
    assert ours.parse_hookimpl_opts(Wrapped(), "after_run") is not None
