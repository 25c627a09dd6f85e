"""Code fingerprints: what changes them, what does not, and where they come from."""

import ast
import functools
import importlib.util
import itertools
import subprocess
import sys
import textwrap

import pytest

from crystallize import Experiment, Pipeline, PipelineStep, data_source, pipeline_step
from crystallize._fingerprint import code_fingerprint

_counter = itertools.count()


def load(tmp_path, source):
    """Import ``source`` as a fresh module from a file (a new name each time)."""
    name = f"fingerprint_mod_{next(_counter)}"
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


BASE = """
    def step(data, ctx, factor=2):
        total = data * factor
        return total + 1
"""


@pytest.mark.parametrize(
    "variant",
    [
        # comments, blank lines, docstrings, line breaks and indentation are layout
        '''
        def step(data, ctx, factor=2):
            """Scale, then add one."""
            total = data * factor   # scale

            return (total
                    + 1)
        ''',
        """
        if True:
                def step(data, ctx, factor=2):
                        total = data * factor
                        return total + 1
        """,
        """


        def step(data, ctx, factor=2): total = data * factor; return total + 1
        """,
    ],
)
def test_layout_comments_and_docstrings_do_not_change_a_fingerprint(tmp_path, variant):
    assert code_fingerprint(load(tmp_path, variant).step) == code_fingerprint(load(tmp_path, BASE).step)


@pytest.mark.parametrize(
    "variant",
    [
        BASE.replace("+ 1", "+ 2"),  # a constant
        BASE.replace("factor=2", "factor=3"),  # a default
        BASE.replace("data * factor", "data ** factor"),  # an operator
        BASE.replace("return total + 1", "return total + 1.0"),  # 1 and 1.0 differ
        BASE.replace("total", "result"),  # a name
    ],
)
def test_a_changed_constant_default_operator_or_name_changes_it(tmp_path, variant):
    assert code_fingerprint(load(tmp_path, variant).step) != code_fingerprint(load(tmp_path, BASE).step)


def test_lambdas_on_one_line_are_told_apart_and_stable(tmp_path):
    module = load(tmp_path, "pair = (lambda x: x + 1, lambda x: x + 2)\nsame = (lambda x: x + 1)\n")
    first, second = module.pair
    assert code_fingerprint(first) != code_fingerprint(second)
    assert code_fingerprint(first) == code_fingerprint(module.same)


def test_closures_count_immutable_values_and_code_not_state(tmp_path):
    module = load(
        tmp_path,
        """
        def make(k, helper=None, log=None):
            calls = 0
            def step(data, ctx):
                nonlocal calls
                calls += 1
                if log is not None:
                    log.append(data)
                return helper(data) * k if helper else data * k
            return step

        def double(x):
            return 2 * x

        def triple(x):
            return 3 * x
        """,
    )
    assert code_fingerprint(module.make(2)) == code_fingerprint(module.make(2))
    assert code_fingerprint(module.make(2)) != code_fingerprint(module.make(3))  # an immutable value
    assert code_fingerprint(module.make(2, module.double)) != code_fingerprint(module.make(2, module.triple))
    # a mutable list, and a counter the function rebinds, are state: they do not count
    assert code_fingerprint(module.make(2, log=[])) == code_fingerprint(module.make(2, log=[1, 2, 3]))
    step = module.make(2)
    before = code_fingerprint(step)
    step(1, None)
    assert code_fingerprint(step) == before


def test_class_steps_count_every_method_and_their_own_base_classes(tmp_path):
    source = """
        from crystallize import PipelineStep

        class Base(PipelineStep):
            def scale(self, x):
                return x * 2

        class Step(Base):
            THRESHOLD = 0.5

            def __call__(self, data, ctx):
                return self.scale(data) > self.THRESHOLD

            @property
            def params(self):
                return {}
    """
    base = code_fingerprint(load(tmp_path, source).Step)
    assert code_fingerprint(load(tmp_path, source).Step) == base
    assert code_fingerprint(load(tmp_path, source.replace("x * 2", "x * 3")).Step) != base  # the base's method
    assert code_fingerprint(load(tmp_path, source.replace("0.5", "0.6")).Step) != base  # a class attribute
    assert code_fingerprint(load(tmp_path, source.replace("return {}", "return {'a': 1}")).Step) != base


def test_partials_count_their_function_and_arguments():
    def scale(data, ctx, factor):
        return data * factor

    assert code_fingerprint(functools.partial(scale, factor=2)) == code_fingerprint(functools.partial(scale, factor=2))
    assert code_fingerprint(functools.partial(scale, factor=2)) != code_fingerprint(functools.partial(scale, factor=3))


def test_code_without_source_is_fingerprinted_by_its_bytecode():
    def compiled(text):
        namespace = {}
        exec(compile(textwrap.dedent(text), "<typed at a prompt>", "exec"), namespace)
        return namespace["f"]

    one = compiled("def f(x):\n    return x + 1\n")
    assert code_fingerprint(one) == code_fingerprint(compiled("def f(x):\n    return x + 1\n"))
    assert code_fingerprint(one) != code_fingerprint(compiled("def f(x):\n    return x + 2\n"))


def test_framework_and_library_code_is_named_not_hashed():
    import json

    assert code_fingerprint(json.dumps) is None
    assert code_fingerprint(len) is None
    assert code_fingerprint(PipelineStep) is None
    assert code_fingerprint(Pipeline) is None


def test_library_folders_are_found_without_sysconfig_and_cover_its_paths(tmp_path):
    import sysconfig

    import pluggy

    from crystallize._fingerprint import _library_roots, is_library_code

    roots = _library_roots()
    for key in ("stdlib", "purelib", "platlib"):
        assert sysconfig.get_paths()[key].startswith(roots), key
    assert is_library_code(pluggy.__name__) and is_library_code("textwrap")
    dynload = [m for m in ("_json", "_csv", "_decimal", "_ssl") if m in sys.modules or importlib.util.find_spec(m)]
    assert dynload and all(is_library_code(__import__(m).__name__) for m in dynload)
    assert not is_library_code(load(tmp_path, BASE).__name__)


def test_a_fingerprint_is_the_same_in_another_process(tmp_path):
    module = load(tmp_path, BASE)
    code = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import {module.__name__} as m; "
    code += "from crystallize._fingerprint import code_fingerprint; print(code_fingerprint(m.step))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == code_fingerprint(module.step)


def test_the_experiment_id_covers_the_code_of_steps_and_datasource(tmp_path):
    def build(module):
        return Experiment(module.source(), Pipeline([pipeline_step()(module.step)()]))

    source = """
        from crystallize import data_source

        @data_source
        def source(ctx):
            return 1

        def step(data, ctx):
            return data + 1
    """
    base = build(load(tmp_path, source))
    assert build(load(tmp_path, source)).id == base.id
    assert build(load(tmp_path, source.replace("data + 1", "data + 2"))).id != base.id
    assert build(load(tmp_path, source.replace("return 1", "return 2"))).id != base.id


def test_steps_with_one_name_and_different_code_get_different_ids():
    @data_source
    def source(ctx):
        return 1

    def first():
        @pipeline_step()
        def step(data, ctx):
            return data + 1

        return step

    def second():
        @pipeline_step()
        def step(data, ctx):
            return data - 1

        return step

    assert Experiment(source(), Pipeline([first()()])).id != Experiment(source(), Pipeline([second()()])).id


def _all_code(code):
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            yield const
            yield from _all_code(const)


@pytest.mark.parametrize(
    "module_name", ["argparse", "dataclasses", "inspect", "json.encoder", "textwrap", "crystallize._lifecycle"]
)
def test_a_function_parsed_from_its_own_lines_is_the_node_of_the_whole_file(module_name):
    """Fingerprints parse a function's block alone; that must give the node parsing the module gives."""
    from crystallize import _fingerprint as fp

    path = importlib.util.find_spec(module_name).origin
    with open(path, encoding="utf-8") as f:
        module_code = compile(f.read(), path, "exec")
    compared = 0
    for code in _all_code(module_code):
        if code.co_name.startswith("<"):  # lambdas, comprehensions: the whole file is parsed for them
            continue
        whole = fp._defs_of(path, None).get(code.co_firstlineno, [])
        whole = [n for n in whole if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == code.co_name]
        if not whole:  # a class body
            continue
        own = fp._own_node(code, None)
        assert own is not None, f"{module_name}: {code.co_name} line {code.co_firstlineno}"
        assert len(whole) == 1 and fp._canonical(own) == fp._canonical(whole[0]), code.co_name
        compared += 1
    assert compared > 10


def test_code_that_compiles_to_nothing_at_the_end_of_a_function_is_part_of_its_block(tmp_path):
    module = load(
        tmp_path,
        """
        class Holder:
            def method(self):
                if self:
                    return 1
                else:
                    pass
                # a comment at the end
            def other(self):
                return 2
        """,
    )
    from crystallize import _fingerprint as fp

    own = fp._own_node(module.Holder.method.__code__, None)
    assert own is not None and isinstance(own.body[0].orelse[0], ast.Pass)  # `else: pass` is kept
    assert fp._own_node(module.Holder.other.__code__, None).name == "other"


def test_a_block_that_does_not_parse_alone_falls_back_to_the_whole_file(tmp_path, monkeypatch):
    module = load(tmp_path, BASE)
    from crystallize import _fingerprint as fp

    expected = code_fingerprint(module.step)
    fp._code_cache.clear()
    monkeypatch.setattr(fp, "_own_node", lambda code, module_globals: None)
    assert code_fingerprint(module.step) == expected
