"""The documentation's code runs as written, and the hook reference is current.

Every fenced code block of every page (``docs/**/*.md`` and every README of
the repository) is collected by ``doc_blocks`` and checked here:
Python and shell blocks run in a fresh folder, in subprocesses that start
together in the background, so the pages cost about as long as their slowest
blocks. The conventions are those of ``docs/contributing.md``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from importlib.util import find_spec
from pathlib import Path

import pytest
import tomllib
from doc_blocks import PYTHON, REPO, SHELL, Block, ConventionError, blocks, pages

DEFAULT_TIMEOUT = 120
#: Blocks mostly wait for imports and subprocesses; a little more than one per core keeps both cores busy.
WORKERS = (os.cpu_count() or 1) + 1


def _collect() -> tuple[dict[Path, str], list[Block]]:
    problems, found = {}, []
    for page in pages():
        try:
            found += blocks(page)
        except ConventionError as error:
            problems[page] = str(error)
    return problems, found


PROBLEMS, BLOCKS = _collect()
RUNNABLE = [block for block in BLOCKS if block.runs]


def python_blocks(page: Path | str) -> list[str]:
    """The code of the Python blocks of ``page`` (a path, or relative to the repository), in order."""
    return [block.code for block in blocks(REPO / page) if block.language in PYTHON]


# --- running a block -------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYSTALLIZE_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run_block(block: Block, folder: Path) -> subprocess.CompletedProcess[str]:
    """Run ``block``'s program in ``folder`` as the reader would: a script, a test module or a shell script."""
    if block.language in SHELL:
        (folder / "example.sh").write_text(block.program)
        command = ["bash", "-eo", "pipefail", "example.sh"]
    elif block.options.get("runner") == "pytest":
        (folder / "test_example.py").write_text(block.program)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"]
    else:
        (folder / "example.py").write_text(block.program)
        command = [sys.executable, "example.py"]
    timeout = float(block.options.get("timeout", DEFAULT_TIMEOUT))
    try:
        return subprocess.run(command, cwd=folder, env=_env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout.decode() if isinstance(expired.stdout, bytes) else expired.stdout or ""
        err = expired.stderr.decode() if isinstance(expired.stderr, bytes) else expired.stderr or ""
        return subprocess.CompletedProcess(command, -1, out, f"{err}\n(timed out after {timeout:g} s)")


def _skip_reason(block: Block) -> str | None:
    if "skip" in block.options:
        return block.options["skip"]
    missing = [m for m in block.options.get("requires", "").split(",") if m and find_spec(m) is None]
    return f"needs {', '.join(missing)}" if missing else None


@pytest.fixture(scope="session")
def started_blocks(request, tmp_path_factory):
    """Start every selected block's subprocess at once (bounded by WORKERS); tests wait for their own.

    A block that a later block of its page continues is not run on its own:
    it runs as the start of that block's program, whose result stands for both.
    Returns ``{block.where: (future of the run, the block whose program it runs)}``.
    """
    selected = [
        item.callspec.params["block"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_code_block_runs_as_written"
    ]
    running = [b for b in selected if b.language in PYTHON | SHELL and _skip_reason(b) is None]
    covered_by = {b.where: next((c for c in running if b in c.chain and _same_run(b, c)), None) for b in running}
    pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="doc-block")
    started = {}
    for block in running:
        if covered_by[block.where] is None:
            started[block.where] = (pool.submit(run_block, block, tmp_path_factory.mktemp("block")), block)
    for block in running:
        runner = block
        while covered_by[runner.where] is not None:
            runner = covered_by[runner.where]
        started[block.where] = started[runner.where]
    yield started
    pool.shutdown(wait=True, cancel_futures=True)


def _same_run(block: Block, continuation: Block) -> bool:
    """Whether running ``continuation`` also checks ``block``: same runner, and it must succeed."""
    options = ("runner", "raises", "requires", "timeout")
    return all(block.options.get(key) == continuation.options.get(key) for key in options)


def _numbered(program: str) -> str:
    return "\n".join(f"{n:4} {line}" for n, line in enumerate(program.splitlines(), 1))


# --- every page, every block ---------------------------------------------------------------------


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_page_follows_the_code_block_conventions(page):
    if page in PROBLEMS:
        pytest.fail(PROBLEMS[page], pytrace=False)


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.where for block in RUNNABLE])
def test_code_block_runs_as_written(block, started_blocks):
    reason = _skip_reason(block)
    if reason:
        pytest.skip(reason)
    if block.language == "toml":
        tomllib.loads(block.program)
        return
    if block.language == "json":
        json.loads(block.program)
        return
    future, ran = started_blocks[block.where]
    problem = judge(ran, future.result())
    if problem:
        pytest.fail(problem, pytrace=False)


def judge(block: Block, done: subprocess.CompletedProcess[str]) -> str | None:
    """What is wrong with how ``block``'s program ended, or ``None``."""
    report = f"{block.where} ({len(block.chain)} earlier blocks prepended):\n{_numbered(block.program)}\n"
    report += f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-5000:]}"
    expected = block.options.get("raises")
    if expected:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
        if done.returncode == 0 or not re.match(rf"(\w+\.)*{re.escape(expected)}\b", last):
            return f"expected the program to fail with {expected}: {report}"
        return None
    return report if done.returncode != 0 else None


def test_the_conventions_catch_a_fragment_continuing_nothing_and_an_unlabelled_fence(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- block: continues=setup -->\n```python\nprint(x)\n```\n")
    with pytest.raises(ConventionError, match="no earlier block of the page has that name"):
        blocks(page)
    page.write_text("```\nx = 1\n```\n")
    with pytest.raises(ConventionError, match="fence language '\\(none\\)'"):
        blocks(page)
    page.write_text("Text.\n\n    import os\n    print(os.sep)\n\nMore text.\n")
    with pytest.raises(ConventionError, match="Python in an indented code block is never run"):
        blocks(page)
    page.write_text("Text.\n\n    pip install crystallize-core\n\nMore text.\n")
    assert blocks(page) == []
    page.write_text("<!-- block: name=a -->\n\nSome text.\n\n```python\nx = 1\n```\n")
    with pytest.raises(ConventionError, match="not followed by a fenced code block"):
        blocks(page)
    page.write_text(
        "<!-- block: name=setup -->\n```python\nx = 1\n```\n\n"
        "- a list\n\n  <!-- block: continues=setup -->\n  ```python\n  print(x)\n  ```\n"
    )
    first, second = blocks(page)
    assert second.program == "x = 1\n\nprint(x)\n" and first.options == {"name": "setup"}


def test_a_block_marked_raises_must_fail_with_that_error(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- block: raises=ConfigurationError -->\n```python\n"
        "from crystallize import Experiment\nExperiment(None, []).validate()\n```\n\n"
        "<!-- block: raises=ConfigurationError -->\n```python\nraise ValueError('another error')\n```\n"
    )
    right, wrong = blocks(page)
    assert judge(right, run_block(right, tmp_path)) is None
    assert "expected the program to fail with ConfigurationError" in judge(wrong, run_block(wrong, tmp_path))


DISTRIBUTION_READMES = [
    page for page in pages() if page.name == "README.md" and (page.parent / "pyproject.toml").is_file()
]
DISTRIBUTION_READMES.remove(REPO / "README.md")  # the workspace's, not a distribution's


@pytest.mark.parametrize("readme", DISTRIBUTION_READMES, ids=lambda p: str(p.parent.relative_to(REPO)))
def test_distribution_readme_says_what_it_is_how_to_install_it_and_shows_a_runnable_example(readme):
    name = tomllib.loads((readme.parent / "pyproject.toml").read_text())["project"]["name"]
    text = readme.read_text()
    assert text.startswith(f"# {name}\n"), f"{readme.relative_to(REPO)} must start with '# {name}'"
    assert re.search(rf"pip install [\"']?{re.escape(name)}\b", text), f"no 'pip install {name}' in the README"
    runnable = [b for b in blocks(readme) if b.language in PYTHON and not b.chain and _skip_reason(b) is None]
    assert runnable, f"{readme.relative_to(REPO)} shows no complete Python example the suite runs"


# --- the hook reference ---------------------------------------------------------------------------


def test_hook_reference_is_generated_from_the_hookspecs():
    done = subprocess.run(
        [sys.executable, str(REPO / "docs" / "generate_hook_reference.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- pages whose examples promise more than running --------------------------------------------------


def test_the_statistics_page_has_examples():
    assert len(python_blocks("docs/statistics.md")) >= 8


def test_readme_example_runs(tmp_path):
    block = python_blocks("README.md")[0]
    done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (exp_dir,) = (tmp_path / "artifacts").iterdir()
    assert len(list(exp_dir.glob("v0/replicate_*/*/ModelStep/model.bin"))) == 6
    assert sorted(p.name for p in exp_dir.iterdir()) == ["v0"]  # the resume continued v0


def test_the_twenty_line_plugin_and_its_test(tmp_path):
    blocks_ = python_blocks("docs/writing-plugins.md")
    plugin = blocks_[0]
    assert len(plugin.strip().splitlines()) <= 26  # 20 lines of code, plus imports and blank lines
    module = plugin + textwrap.dedent(
        """
        from crystallize import Experiment, Pipeline, data_source, pipeline_step
        from crystallize.testing import plugin_registered

        @data_source
        def src(ctx):
            return 1

        @pipeline_step()
        def work(data, ctx):
            return data

        experiment = Experiment(src(), Pipeline([work(), work()]), replicates=3)


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
    (tmp_path / "test_doc_plugin.py").write_text(module)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_doc_plugin.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_command_example_runs_from_its_entry_point(tmp_path):
    block = next(b for b in python_blocks("docs/writing-plugins.md") if "Command(" in b)
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
    block = next(b for b in python_blocks("docs/execution.md") if "class Progress" in b)
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


def test_the_printed_table_on_the_results_page_is_what_the_example_prints(tmp_path):
    page = (REPO / "docs" / "results.md").read_text()
    shown = page.split("prints (the first table):\n\n```text\n", 1)[1].split("```", 1)[0]
    first = python_blocks("docs/results.md")[0]
    done = subprocess.run([sys.executable, "-c", first], cwd=tmp_path, capture_output=True, text=True)
    assert done.stdout.startswith(shown), done.stdout


def test_the_migration_guide_lists_the_peer_suite_count():
    text = (REPO / "docs" / "migrating-from-crystallize-ml.md").read_text()
    assert re.search(r"\*\*Result: \d+ of 293 pass\*\*", text)
