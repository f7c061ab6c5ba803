"""Fixtures of the diagnose tests: a random classification batch and digits loaders."""

import pytest
import torch


@pytest.fixture
def classification_batch():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 16, generator=generator)
    y = torch.randint(0, 10, (64,), generator=generator)
    return [(x, y)]


@pytest.fixture
def digits_loaders():
    """scikit-learn's bundled 8x8 digits as (1, 8, 8) images: train and validation loaders."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    y = torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    train = torch.utils.data.TensorDataset(x[:1400], y[:1400])
    val = torch.utils.data.TensorDataset(x[1400:], y[1400:])
    return (
        torch.utils.data.DataLoader(
            train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0)
        ),
        torch.utils.data.DataLoader(val, batch_size=128),
    )
