import pytest

from crystallize import ContextMutationError, FrozenContext


def test_context_reads_and_adds_keys():
    ctx = FrozenContext({"replicate": 0, "condition": "baseline"})
    ctx["lr"] = 0.1
    ctx.add("depth", 3)
    assert ctx["lr"] == 0.1 and ctx["depth"] == 3
    assert dict(ctx) == {"replicate": 0, "condition": "baseline", "lr": 0.1, "depth": 3}
    assert ctx.get("missing", "default") == "default"
    assert "lr" in ctx and len(ctx) == 4


def test_context_refuses_to_overwrite_and_names_the_key():
    ctx = FrozenContext({"replicate": 0})
    with pytest.raises(ContextMutationError, match="'replicate' is already set to 0"):
        ctx["replicate"] = 1
    with pytest.raises(TypeError):  # ContextMutationError is a TypeError too
        ctx.add("replicate", 2)
    assert ctx["replicate"] == 0


def test_missing_key_error_lists_known_keys():
    ctx = FrozenContext({"replicate": 0})
    with pytest.raises(KeyError, match="'lr' is not in the context.*'replicate'"):
        ctx["lr"]


def test_as_dict_is_read_only():
    ctx = FrozenContext({"a": 1})
    view = ctx.as_dict()
    with pytest.raises(TypeError):
        view["b"] = 2  # type: ignore[index]


def test_metrics_accumulate_in_order():
    ctx = FrozenContext()
    ctx.metrics.add("loss", 0.5)
    ctx.metrics.add("loss", 0.25)
    ctx.metrics.add("acc", 1)
    assert ctx.metrics["loss"] == (0.5, 0.25)
    assert ctx.metrics.as_dict() == {"loss": (0.5, 0.25), "acc": (1,)}
    assert "acc" in ctx.metrics and len(ctx.metrics) == 2


def test_changing_a_value_taken_from_as_dict_leaves_the_context_unchanged():
    ctx = FrozenContext({"config": {"lr": 0.1}, "layers": [1]})
    snapshot = ctx.as_dict()
    snapshot["config"]["lr"] = 9
    snapshot["layers"].append(2)
    assert ctx["config"] == {"lr": 0.1} and ctx["layers"] == [1]
