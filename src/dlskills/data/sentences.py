"""Generated sentence classification (catalog 1510.03820's task, at laptop scale): short
"reviews" over a small vocabulary whose polarity is decided by one phrase, so that a text
classifier must read n-grams, not single words. Nothing is downloaded: the sentences come from
the grammar below and ``seed``.

Vocabulary (token 0 is ``<pad>``, unused by this set but reserved for text models):
6 positive and 6 negative adjectives, 2 negators, 3 intensifiers, the copula ``is``, the
determiner ``the``, 8 nouns, 6 verbs and 24 filler words.

Every sentence has exactly ``length`` tokens and holds, at random non-overlapping places in a
stream of filler words:

- one **verdict** ``is [negator] [intensifier] ADJ`` (negator with probability ``p_negation``,
  intensifier with ``p_intensifier``); its label is the adjective's polarity, flipped by the
  negator: y = polarity(ADJ) XOR negated (1 = positive);
- ``distractors`` phrases ``the [intensifier] ADJ NOUN`` with adjectives of random polarity
  (they say nothing about the label), and one ``NEGATOR VERB`` ("not see", "never read"),
  also uninformative.

So every unigram occurs in both classes: an adjective's polarity counts only after ``is`` and a
negator flips it only inside the verdict. The n-grams that decide are ``is ADJ`` (2 tokens),
``is NEG ADJ`` / ``is INT ADJ`` / ``NEG INT ADJ`` (3); a region of 3 tokens sees every case,
one of 1 sees only bags of words (the Bayes rate is then far from 100 %). Classes are balanced
(the adjective's polarity is drawn for the label), the label is a deterministic function of the
sentence (the Bayes rate is 100 %), and the split is 70/15/15, stratified, by the same ``seed``.

Inputs are the token ids as float32 (``DataSplits`` stores float inputs; text models cast them
back to int64); ``info["vocab_size"]`` and ``info["words"]`` describe the vocabulary, and
:func:`decode` turns ids back into text.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from dlskills.data._registry import DataSplits, register_dataset
from dlskills.data.synthetic import _check_count, _splits

POSITIVE = ("good", "great", "fine", "superb", "lovely", "clever")
NEGATIVE = ("bad", "awful", "dull", "poor", "boring", "weak")
NEGATORS = ("not", "never")
INTENSIFIERS = ("very", "really", "so")
NOUNS = ("film", "plot", "cast", "story", "score", "actor", "scene", "script")
VERBS = ("see", "read", "like", "watch", "buy", "expect")
FILLERS = (
    "and", "but", "it", "we", "they", "this", "that", "with", "for", "of", "in", "on",
    "as", "at", "by", "to", "from", "then", "also", "just", "here", "there", "when", "after",
)  # fmt: skip
WORDS: tuple[str, ...] = (
    "<pad>", "is", "the", *POSITIVE, *NEGATIVE, *NEGATORS, *INTENSIFIERS, *NOUNS, *VERBS, *FILLERS,
)  # fmt: skip
INDEX = {word: i for i, word in enumerate(WORDS)}


def _check_probability(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def _pick(rng: np.random.Generator, words: Sequence[str]) -> str:
    return words[rng.integers(len(words))]


def sentence(
    rng: np.random.Generator,
    label: int,
    *,
    length: int,
    distractors: int,
    p_negation: float,
    p_intensifier: float,
) -> list[str]:
    """One sentence of ``length`` words with the given label (see the module docstring)."""
    negated = bool(rng.random() < p_negation)
    positive = bool(label) != negated  # y = polarity XOR negated
    verdict = ["is"]
    if negated:
        verdict.append(_pick(rng, NEGATORS))
    if rng.random() < p_intensifier:
        verdict.append(_pick(rng, INTENSIFIERS))
    verdict.append(_pick(rng, POSITIVE if positive else NEGATIVE))
    phrases = [verdict, [_pick(rng, NEGATORS), _pick(rng, VERBS)]]
    for _ in range(distractors):
        phrase = ["the"]
        if rng.random() < p_intensifier:
            phrase.append(_pick(rng, INTENSIFIERS))
        phrase += [_pick(rng, POSITIVE + NEGATIVE), _pick(rng, NOUNS)]
        phrases.append(phrase)
    fill = length - sum(len(p) for p in phrases)
    if fill < 0:
        raise ValueError(f"length={length} is too short for {len(phrases)} phrases")
    # the phrases in random order, separated by a random split of the filler words
    order = rng.permutation(len(phrases))
    cuts = np.sort(rng.integers(0, fill + 1, size=len(phrases)))
    gaps = np.diff(np.concatenate([[0], cuts, [fill]]))
    words: list[str] = []
    for gap, index in zip(gaps, [*order, None]):
        words += [_pick(rng, FILLERS) for _ in range(gap)]
        if index is not None:
            words += phrases[index]
    return words


@functools.cache
def _generate(
    seed: int, n: int, length: int, distractors: int, p_negation: float, p_intensifier: float
) -> np.ndarray:
    """The (n, length) token ids of sentence i having label i % 2; made once per process for
    each setting (a sweep trains many models on the same data), read-only."""
    rng = np.random.default_rng(seed)
    ids = np.array(
        [
            [INDEX[w] for w in sentence(
                rng, i % 2, length=length, distractors=distractors,
                p_negation=p_negation, p_intensifier=p_intensifier,
            )]
            for i in range(n)
        ]
    )  # fmt: skip
    ids.flags.writeable = False
    return ids


def decode(ids: Sequence[float] | np.ndarray) -> str:
    """The words of one sentence's token ids (floats or ints), space-separated."""
    return " ".join(WORDS[int(i)] for i in ids)


@register_dataset("sentences", task="classification", source="synthetic", input="tokens")
def sentences(
    *,
    seed: int = 0,
    n: int = 2000,
    length: int = 20,
    distractors: int = 2,
    p_negation: float = 0.5,
    p_intensifier: float = 0.5,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> DataSplits:
    _check_count("n", n, 20)
    _check_count("distractors", distractors, 0)
    _check_count("length", length, 6 + 4 * distractors)  # room for the longest phrases
    p_negation = _check_probability("p_negation", p_negation)
    p_intensifier = _check_probability("p_intensifier", p_intensifier)
    labels = np.arange(n) % 2
    ids = _generate(seed, n, length, distractors, p_negation, p_intensifier)
    return _splits(
        "sentences", ids, labels, task="classification", num_classes=2, seed=seed,
        val_fraction=val_fraction, test_fraction=test_fraction,
        info={"n": n, "length": length, "distractors": distractors, "p_negation": p_negation,
              "p_intensifier": p_intensifier, "vocab_size": len(WORDS), "words": list(WORDS)},
    )  # fmt: skip
