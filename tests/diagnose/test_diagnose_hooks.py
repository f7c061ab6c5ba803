import torch
from diagnose_nets import build_mlp
from torch import nn

from dlskills.diagnose._hooks import ActivationRecorder, probe_modules, reinitialize


class _NeedsArgument(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Linear(3, 3)

    def reset_parameters(self, scale):  # not callable without arguments: children are reset
        raise AssertionError("must not be called")


class _ModelLevelReset(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 3)

    def reset_parameters(self):
        nn.init.constant_(self.layer.weight, 0.5)


def test_reinitialize_descends_into_modules_whose_reset_needs_arguments():
    model = _NeedsArgument()
    before = model.inner.weight.detach().clone()
    reinitialize(model, seed=1)
    assert not torch.equal(model.inner.weight, before)
    again = _NeedsArgument()
    reinitialize(again, seed=1)
    assert torch.equal(again.inner.weight, model.inner.weight)  # seeded


def test_reinitialize_trusts_a_model_level_reset_and_keeps_the_global_rng():
    model = _ModelLevelReset()
    state = torch.random.get_rng_state()
    reinitialize(model, seed=0)
    assert torch.all(model.layer.weight == 0.5)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_probe_modules_fall_back_to_linear_layers():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 4), nn.Linear(4, 1)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    assert [name for name, _ in probe_modules(Functional())] == ["a", "b"]
    assert [name for name, _ in probe_modules(build_mlp([4, 4]))] == ["1", "3"]


def test_recorder_labels_repeated_calls_and_always_removes_hooks():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Linear(2, 2), relu, nn.Linear(2, 2), relu)
    recorder = ActivationRecorder([("1", relu)], lambda name, out: out.shape[1])
    try:
        with recorder:
            model(torch.randn(3, 2))
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert [label for label, _ in recorder.records] == ["1", "1#2"]
    assert not relu._forward_hooks
    recorder.attach()
    recorder.attach()  # idempotent: still one hook
    assert len(relu._forward_hooks) == 1
    recorder.remove()
