"""Tiny "boring" set-up shared by the Trainer tests: a 2-class blob task, an MLP with dropout
(so the global RNG matters) and a seeded shuffled loader."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class CountingDataset(TensorDataset):
    """TensorDataset that counts item reads (to prove a resume does not re-read data)."""

    def __init__(self, *tensors):
        super().__init__(*tensors)
        self.reads = 0

    def __getitem__(self, index):
        self.reads += 1
        return super().__getitem__(index)


def blobs(n=96, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=generator)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return x, y


def make_parts(
    batch_size=16, lr=0.05, data_seed=0, loader_seed=0, scheduler=True, optimizer="adam"
):
    from dlskills.optim import create

    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))
    optimizer = create(optimizer, model.parameters(), lr=lr)
    x, y = blobs(seed=data_seed)
    train = CountingDataset(x, y)
    loader = DataLoader(
        train,
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(loader_seed),
    )
    val = DataLoader(TensorDataset(*blobs(48, seed=7)), batch_size=32)
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 0.97**t) if scheduler else None
    return model, optimizer, loader, val, sched


@pytest.fixture
def scripted_metric():
    """A callback class that overwrites a validation metric with scripted per-epoch values."""
    from dlskills.train.callbacks import Callback

    class ScriptedMetric(Callback):
        def __init__(self, key, values):
            self.key, self.values = key, list(values)

        def on_validation_end(self, trainer):
            trainer.metrics[self.key] = self.values[trainer.epoch]
            trainer.history[-1][self.key] = self.values[trainer.epoch]

    return ScriptedMetric


@pytest.fixture
def parts_factory():
    return make_parts


@pytest.fixture
def make_trainer(tmp_path):
    from dlskills.train import Trainer

    def factory(callbacks=(), run_dir=None, max_epochs=3, max_steps=None, **kw):
        model, optimizer, loader, val, sched = make_parts(**kw)
        return Trainer(
            model,
            optimizer,
            nn.functional.cross_entropy,
            loader,
            val,
            list(callbacks),
            max_epochs=max_epochs,
            max_steps=max_steps,
            scheduler=sched,
            seed=3,
            run_dir=run_dir or tmp_path,
        )

    return factory


@pytest.fixture(autouse=True)
def _keep_thread_count():
    """Runs set torch's thread count (config key 'threads'); give other tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
