import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from dlskills.train import Trainer
from dlskills.train.techniques import (
    Mixup,
    mixup_batch,
    mixup_detection,
    sample_lambda,
    soft_cross_entropy,
)


def test_mixed_inputs_and_targets_follow_the_drawn_permutation():
    x = torch.randn(6, 3)
    y = torch.tensor([0, 1, 2, 3, 1, 0])
    mixed = mixup_batch(x, y, 0.4, num_classes=4, generator=torch.Generator().manual_seed(3))
    lam, perm = mixed.lam, mixed.permutation
    assert 0.0 < lam < 1.0 and sorted(perm.tolist()) == list(range(6))
    for i in range(6):
        j = int(perm[i])
        torch.testing.assert_close(mixed.inputs[i], lam * x[i] + (1 - lam) * x[j])
        expected = torch.zeros(4)
        expected[y[i]] += lam
        expected[y[j]] += 1 - lam
        torch.testing.assert_close(mixed.targets[i], expected)
    torch.testing.assert_close(mixed.targets.sum(1), torch.ones(6))


def test_lambda_is_reproducible_and_beta_distributed():
    draws = [sample_lambda(0.5, torch.Generator().manual_seed(s)) for s in range(4000)]
    assert sample_lambda(0.5, torch.Generator().manual_seed(7)) == draws[7]
    lam = torch.tensor(draws, dtype=torch.float64)
    # Beta(α, α): mean 1/2, variance 1/(4(2α+1)) = 1/8 at α = 0.5
    assert abs(lam.mean().item() - 0.5) < 0.02
    assert abs(lam.var().item() - 0.125) < 0.01


def test_detection_mixup_canvas_boxes_and_weights_by_hand():
    image_a = torch.ones(1, 2, 3)  # H=2, W=3
    image_b = torch.full((1, 3, 2), 2.0)  # H=3, W=2
    boxes_a = torch.tensor([[0.0, 0.0, 2.0, 1.0, 5.0]])  # x1 y1 x2 y2 class
    boxes_b = torch.tensor([[0.0, 1.0, 1.0, 2.0, 7.0], [1.0, 0.0, 2.0, 3.0, 8.0]])
    canvas, boxes, weights = mixup_detection(image_a, boxes_a, image_b, boxes_b, 0.75)
    expected = torch.tensor(
        [
            [
                [0.75 + 0.5, 0.75 + 0.5, 0.75],
                [0.75 + 0.5, 0.75 + 0.5, 0.75],
                [0.5, 0.5, 0.0],
            ]
        ]
    )
    torch.testing.assert_close(canvas, expected)
    torch.testing.assert_close(boxes, torch.cat([boxes_a, boxes_b]))
    torch.testing.assert_close(weights, torch.tensor([0.75, 0.25, 0.25]))
    with pytest.raises(ValueError, match="lam"):
        mixup_detection(image_a, boxes_a, image_b, boxes_b, 1.5)
    with pytest.raises(ValueError, match="boxes_b"):
        mixup_detection(image_a, boxes_a, image_b, torch.zeros(2, 3), 0.5)


def test_callback_mixes_the_trainer_batch_and_uses_soft_targets():
    torch.manual_seed(0)
    x = torch.randn(8, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    model = torch.nn.Linear(3, 3)
    mixup = Mixup(0.2, num_classes=3, seed=5)
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, inputs):
            seen.append(inputs.detach().clone())
            return model(inputs)

    losses = []

    def loss_fn(outputs, targets):
        loss = mixup.loss_fn(outputs, targets)
        losses.append((loss.detach(), outputs.detach(), targets))
        return loss

    spy = Spy()
    trainer = Trainer(
        spy,
        torch.optim.SGD(model.parameters(), lr=0.0),
        loss_fn,
        loader,
        loader,
        [mixup],
        max_steps=1,
    )
    trainer.fit()
    reference = mixup_batch(x, y, 0.2, num_classes=3, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(seen[0], reference.inputs)
    train_loss, outputs, _ = losses[0]
    torch.testing.assert_close(train_loss, soft_cross_entropy(outputs, reference.targets))
    # evaluation: plain cross-entropy on the unmixed validation batch
    eval_loss, eval_outputs, eval_targets = losses[-1]
    torch.testing.assert_close(seen[-1], x)
    torch.testing.assert_close(
        eval_loss, torch.nn.functional.cross_entropy(eval_outputs, eval_targets)
    )
    assert torch.equal(mixup.tensor_state()["generator"], mixup.generator.get_state())


def test_callback_leaves_the_loaders_tensors_alone():
    """Batches that are views of the dataset (a slicing loader) stay unmixed in the dataset."""
    x = torch.randn(8, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    original = x.clone()
    batches = [(x[:4], y[:4]), (x[4:], y[4:])]
    model = torch.nn.Linear(3, 3)
    mixup = Mixup(0.4, num_classes=3, seed=1)
    Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        mixup.loss_fn,
        batches,
        None,
        [mixup],
        max_epochs=2,
    ).fit()
    assert torch.equal(x, original)


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="alpha"):
        Mixup(0.0, num_classes=3)
    with pytest.raises(ValueError, match="num_classes"):
        Mixup(0.2, num_classes=1)
    with pytest.raises(ValueError, match="batch size"):
        mixup_batch(
            torch.zeros(2, 1),
            torch.zeros(3, dtype=torch.long),
            0.2,
            num_classes=2,
            generator=torch.Generator(),
        )
