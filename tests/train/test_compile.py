"""compile_model (catalog 2002.03794): a torch.compile wrapper whose checkpoints keep the plain
module's names. Compiling itself takes ~30 s on CPU: the end-to-end check is the slow test
tests/test_cli_train.py::test_compile_trains_and_saves_plain_parameter_names."""

import pytest
import torch
from torch import nn

from dlskills.train import Trainer
from dlskills.train._registry import TECHNIQUES
from dlskills.train.callbacks import CALLBACKS
from dlskills.train.compile import compile_model

# dynamo's tracing touches torch.jit helpers that warn on import in torch 2.13
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_wrapper_shares_parameters_and_checkpoints_use_plain_names(parts_factory):
    model, optimizer, loader, _, _ = parts_factory()
    compiled = compile_model(model)  # lazy: nothing is compiled before the first call
    assert compiled._orig_mod is model
    assert [p for p in compiled.parameters()] == [p for p in model.parameters()]
    trainer = Trainer(compiled, optimizer, nn.functional.cross_entropy, loader, max_epochs=1)
    _, tensors = trainer.state()
    assert "model.0.weight" in tensors and not any("_orig_mod" in k for k in tensors)
    assert torch.equal(tensors["model.0.weight"], model[0].weight)
    with pytest.raises(TypeError, match=r"nn\.Module"):
        compile_model(lambda x: x)


def test_registries_link_the_catalog_ids():
    assert TECHNIQUES.get("compile") is compile_model
    assert TECHNIQUES.entry("compile").catalog_id == "2002.03794"
    assert [e.name for e in CALLBACKS.by_catalog_id("1211.5063")] == ["grad_clip"]
    assert {"progress", "csv_logger", "checkpoint", "nan_guard", "early_stopping"} <= set(
        CALLBACKS.names()
    )
