"""The documentation's code runs and the hook reference is current."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


STATISTICS = python_blocks(REPO / "docs" / "statistics.md")


@pytest.mark.parametrize("block", STATISTICS, ids=[f"block{i}" for i in range(len(STATISTICS))])
def test_every_statistics_example_runs_as_written(block, tmp_path):
    done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


RESULTS = python_blocks(REPO / "docs" / "results.md")


@pytest.mark.parametrize("block", RESULTS, ids=[f"block{i}" for i in range(len(RESULTS))])
def test_every_results_example_runs_as_written(block, tmp_path):
    done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_printed_table_on_the_results_page_is_what_the_example_prints(tmp_path):
    page = (REPO / "docs" / "results.md").read_text()
    shown = page.split("prints (the first table):\n\n```text\n", 1)[1].split("```", 1)[0]
    done = subprocess.run([sys.executable, "-c", RESULTS[0]], cwd=tmp_path, capture_output=True, text=True)
    assert done.stdout.startswith(shown), done.stdout


def test_the_statistics_page_has_examples():
    assert len(STATISTICS) >= 8


PROVENANCE = python_blocks(REPO / "docs" / "provenance.md")


@pytest.mark.parametrize("block", PROVENANCE, ids=[f"block{i}" for i in range(len(PROVENANCE))])
def test_every_provenance_example_runs_as_written(block, tmp_path):
    done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_hook_reference_is_generated_from_the_hookspecs():
    done = subprocess.run(
        [sys.executable, str(REPO / "docs" / "generate_hook_reference.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout


MIGRATION = python_blocks(REPO / "docs" / "migrating-from-crystallize-ml.md")


@pytest.mark.parametrize("block", MIGRATION, ids=[f"block{i}" for i in range(len(MIGRATION))])
def test_every_migration_example_runs_as_written(block, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYSTALLIZE_")}
    env["CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr


def test_the_async_steps_example_runs_and_overlaps_its_waits(tmp_path):
    block = next(b for b in python_blocks(REPO / "docs" / "execution.md") if "AsyncExecution(max_concurrency" in b)
    done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_migration_guide_lists_the_peer_suite_count():
    text = (REPO / "docs" / "migrating-from-crystallize-ml.md").read_text()
    assert re.search(r"\*\*Result: \d+ of 293 pass\*\*", text)


def test_readme_example_runs(tmp_path):
    (block,) = python_blocks(REPO / "README.md")
    done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (exp_dir,) = (tmp_path / "artifacts").iterdir()
    assert len(list(exp_dir.glob("v0/replicate_*/*/ModelStep/model.bin"))) == 6
    assert sorted(p.name for p in exp_dir.iterdir()) == ["v0"]  # the resume continued v0


def test_the_twenty_line_plugin_and_its_test(tmp_path):
    blocks = python_blocks(REPO / "docs" / "writing-plugins.md")
    plugin = blocks[0]
    test = next(b for b in blocks if "def test_" in b)
    assert len(plugin.strip().splitlines()) <= 26  # 20 lines of code, plus imports and blank lines
    module = plugin + textwrap.dedent(
        """
        from crystallize import Experiment, Pipeline, data_source, pipeline_step

        @data_source
        def src(ctx):
            return 1

        @pipeline_step()
        def work(data, ctx):
            return data

        experiment = Experiment(src(), Pipeline([work(), work()]), replicates=3)
        """
    )
    runs_twice = textwrap.dedent(
        """

        def test_each_run_reports_only_its_own_steps(capsys, monkeypatch):
            ticks = iter(range(1_000_000))
            monkeypatch.setattr(time, "perf_counter", lambda: next(ticks))  # every step takes 1 tick
            timer = StepTimer()
            with plugin_registered(timer):
                experiment.run()
                first = capsys.readouterr().out
                experiment.run()
                second = capsys.readouterr().out
            assert first == second == f"{experiment.id}: slowest steps [('work', 6.0)]\\n"
            assert timer.runs == {}
        """
    )
    (tmp_path / "test_doc_plugin.py").write_text(module + test + runs_twice)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_doc_plugin.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_command_example_runs_from_its_entry_point(tmp_path):
    block = next(b for b in python_blocks(REPO / "docs" / "writing-plugins.md") if "Command(" in b)
    site = tmp_path / "site"
    (site / "crystallize_steptimer-0.1.0.dist-info").mkdir(parents=True)
    (site / "crystallize_steptimer-0.1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: crystallize-steptimer\nVersion: 0.1.0\n"
    )
    (site / "crystallize_steptimer-0.1.0.dist-info" / "entry_points.txt").write_text(
        "[crystallize.commands]\ntimings = crystallize_steptimer:report\n"
    )
    (site / "crystallize_steptimer.py").write_text(block)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYSTALLIZE_")}
    env["PYTHONPATH"] = str(site)
    done = subprocess.run(
        [sys.executable, "-m", "crystallize", "timings", "artifacts/exp/v0"], env=env, capture_output=True, text=True
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "timing report for artifacts/exp/v0\n", "")


def test_progress_example_counts_every_unit_whichever_engine_runs_it(tmp_path):
    block = next(b for b in python_blocks(REPO / "docs" / "execution.md") if "class Progress" in b)
    script = block + textwrap.dedent(
        """
        import random
        from crystallize import Experiment, ParallelExecution, Treatment, data_source, pipeline_step

        @data_source
        def src(ctx):
            return random.random()

        @pipeline_step()
        def step(data, ctx):
            return data

        if __name__ == "__main__":
            for engine in ([], [ParallelExecution(2, "thread")], [ParallelExecution(2, "process")]):
                progress = Progress()
                exp = Experiment(src(), [step()], plugins=[progress, *engine],
                                 treatments=[Treatment("t", {})], replicates=5)
                exp.run()
                print()
                print("DONE", progress.done, progress.total)
        """
    )
    (tmp_path / "progress.py").write_text(script)
    done = subprocess.run([sys.executable, "progress.py"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stdout.splitlines() if line.startswith("DONE")] == ["DONE 10 10"] * 3


STORAGE = python_blocks(REPO / "docs" / "storage.md")


@pytest.mark.parametrize("block", STORAGE, ids=[f"block{i}" for i in range(len(STORAGE))])
def test_every_storage_example_runs_as_written(block, tmp_path):
    pytest.importorskip("moto.server")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYSTALLIZE_", "AWS_"))}
    if "RunStoreContract" in block:  # a test module: pytest runs the contract against the store it names
        (tmp_path / "test_my_store.py").write_text(block)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_store.py"]
    else:
        command = [sys.executable, "-c", block]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
