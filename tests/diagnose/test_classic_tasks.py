"""rumelhart-1985 (XOR, 8-3-8 encoder) and rumelhart-1986 (symmetry detection with 6 inputs and
2 hidden units): the nets learn the tasks with momentum gradient descent on the squared error,
and the symmetry net finds the paper's solution (mirror-opposite weights in ratio ≈ 1:2:4)."""

from types import SimpleNamespace

import pytest
import torch

from dlskills import repro
from dlskills.diagnose.classic_tasks import task_patterns, train_classic


def test_patterns():
    x, t = task_patterns("symmetry")
    assert x.shape == (64, 6) and int(t.sum()) == 8  # 2³ palindromes of length 6
    assert t[x.tolist().index([1, 0, 1, 1, 0, 1])] == 1
    assert t[x.tolist().index([1, 0, 1, 1, 0, 0])] == 0
    x, t = task_patterns("xor")
    assert t.flatten().tolist() == [0, 1, 1, 0]
    with pytest.raises(ValueError, match="task"):
        task_patterns("parity")


def test_fast_repro_1985_xor_and_encoder_are_learned_by_the_gradient():
    """rumelhart-1985 over seeds 0-4: XOR and the 8-3-8 encoder are solved in every run (XOR
    in a median of 107 sweeps); back-propagation agrees with central finite differences to
    7e-10."""
    result = repro.get("rumelhart-1985")(scale="fast")
    assert result.verdict == repro.fast_verdict("rumelhart-1985") == "reproduced", result.reason
    assert result["XOR solve rate"] >= 0.8 and result["encoder solve rate"] >= 0.9
    assert result["XOR median sweeps (solved)"] < 1000
    assert result["back-prop vs finite differences"] < 1e-6


def test_encoder_8_3_8_learns_a_code_through_3_hidden_units():
    result = train_classic("encoder", seed=0)
    assert result.solved
    assert torch.equal(result.outputs.argmax(1), torch.arange(8))
    # the 8 hidden codes must be distinct to be decoded
    assert torch.pdist(result.hidden).min() > 0.1


def test_fast_repro_1986_symmetry_net_finds_the_papers_solution():
    """rumelhart-1986 over seeds 0-4: 3 of 5 runs solve symmetry (median 1,991 sweeps; the
    paper: 1,425), and 2 of those 3 show the paper's solution: mirror weights equal and
    opposite, sizes in ratio ≈ 1:2:4, the two hidden units of opposite sign."""
    result = repro.get("rumelhart-1986")(scale="fast")
    assert result.verdict == repro.fast_verdict("rumelhart-1986") == "reproduced", result.reason
    assert result["solve rate"] >= 0.6
    assert result["median sweeps (solved)"] <= 5000
    assert result["solved nets with the paper's solution"] > 0.5


def test_papers_solution_detector_on_constructed_weights():
    """The structure test the repro applies, on weights built by hand to have it or not."""
    from dlskills.diagnose.classic_tasks import classic_net
    from dlskills.repro.classic_tasks_rumelhart import _papers_solution

    net = classic_net(6, 2, 1)
    good = torch.tensor([[1.0, 2.0, 4.0, -4.0, -2.0, -1.0], [-1.0, -2.0, -4.0, 4.0, 2.0, 1.0]])
    with torch.no_grad():
        net[0].weight.copy_(good)
    assert _papers_solution(SimpleNamespace(model=net))
    with torch.no_grad():
        net[0].weight.copy_(good * torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 1.2]))
    assert not _papers_solution(SimpleNamespace(model=net))  # mirror weights no longer opposite
    with torch.no_grad():
        net[0].weight.copy_(good.abs().neg() * torch.tensor([1, 1, 1, -1, -1, -1]))
    assert not _papers_solution(SimpleNamespace(model=net))  # the two units of the same sign


def test_one_seed_draws_one_weight_panel(tmp_path):
    result = repro.get("rumelhart-1986")(scale="fast", seeds=[0], out=tmp_path)
    assert result.run["seeds"] == [0]
    assert [p for p in tmp_path.iterdir() if p.suffix == ".png"]
