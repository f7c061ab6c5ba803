import pytest

from dlskills._registry import Registry


def test_register_create_and_metadata():
    reg = Registry("widget")

    @reg.register("my-widget", catalog_id="1234.5678", aliases=("mw",), needs_closure=True)
    class MyWidget:
        def __init__(self, size):
            self.size = size

    assert reg.create("MY_WIDGET", 3).size == 3
    assert reg.get("mw") is MyWidget
    entry = reg.entry("my_widget")
    assert entry.catalog_id == "1234.5678"
    assert entry.meta == {"needs_closure": True}
    assert entry.dotted_path.endswith("MyWidget")
    assert [e.name for e in reg.by_catalog_id("1234.5678")] == ["my-widget"]
    assert "MW" in reg and "other" not in reg
    assert len(reg) == 1


def test_unknown_name_suggests_close_matches():
    reg = Registry("optimizer")
    reg.add("adabound", object)
    with pytest.raises(ValueError, match="did you mean 'adabound'"):
        reg.get("adabund")


def test_name_clash_is_rejected():
    reg = Registry("model")
    reg.add("cnn", int)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("CNN", float)
