"""The generated sentences (1510.03820's task): deterministic by seed, labelled by the grammar's
rule (recomputed here from the words), balanced, and not solvable from single words."""

import numpy as np
import pytest
import torch

from dlskills.data import load
from dlskills.data.sentences import INTENSIFIERS, NEGATIVE, NEGATORS, POSITIVE, WORDS, decode


def rows(splits):
    x = torch.cat([part.tensors[0] for part in (splits.train, splits.val, splits.test)])
    y = torch.cat([part.tensors[1] for part in (splits.train, splits.val, splits.test)])
    return [decode(ids).split() for ids in x], y.tolist()


def rule(words):
    """The label read off the verdict: the words after "is", a negator flipping the polarity."""
    (start,) = [i for i, w in enumerate(words) if w == "is"]
    phrase = words[start + 1 : start + 4]
    negated = phrase[0] in NEGATORS
    adjective = next(w for w in phrase if w in POSITIVE + NEGATIVE)
    return int((adjective in POSITIVE) != negated)


def test_deterministic_by_seed_and_shaped():
    first, again, other = (load("sentences", seed=s) for s in (3, 3, 4))
    assert first.sizes() == (1400, 300, 300) and first.input_shape == (20,)
    assert first.num_classes == 2 and first.info["vocab_size"] == len(WORDS) == 58
    assert torch.equal(first.train.tensors[0], again.train.tensors[0])
    assert not torch.equal(first.train.tensors[0], other.train.tensors[0])


def test_every_label_follows_the_grammar():
    splits = load("sentences", seed=1, n=600, length=16, distractors=1)
    sentences, labels = rows(splits)
    assert all(len(words) == 16 for words in sentences)
    assert [rule(words) for words in sentences] == labels
    assert np.bincount(labels).tolist() == [300, 300]
    # every verdict shape occurs: plain, negated, intensified, both
    shapes = {
        tuple(w in NEGATORS + INTENSIFIERS for w in s[s.index("is") + 1 :][:2]) for s in sentences
    }
    assert {(False, False), (True, False), (False, True), (True, True)} <= shapes


def test_single_words_do_not_decide():
    sentences, labels = rows(load("sentences", seed=0))
    for word in POSITIVE + NEGATIVE + NEGATORS:
        with_word = [y for s, y in zip(sentences, labels) if word in s]
        assert 0.3 < np.mean(with_word) < 0.7, word


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="p_negation"):
        load("sentences", p_negation=1.5)
    with pytest.raises(ValueError, match="length"):
        load("sentences", length=8)
