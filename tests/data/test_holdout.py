"""ttl.data.holdout: the per-document, content-only held-out rule."""

import hashlib

import pytest

from ttl.data.config import DataSettings
from ttl.data.holdout import SALT, HoldoutRule, check_fraction, document_hash, rule_for
from ttl.errors import TTLError


def test_the_hash_is_salted_blake2b_of_the_utf8_text():
    text = "A capivara é o maior roedor do mundo."
    expected = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8, key=SALT).digest(), "big") / 2**64
    assert document_hash(text) == expected and 0 <= expected < 1


def test_the_share_held_out_matches_the_fraction_and_sets_are_nested():
    texts = [f"documento {i}: {'palavra ' * (i % 7)}" for i in range(50_000)]
    small, large = HoldoutRule(0.01), HoldoutRule(0.05)
    held_small = {t for t in texts if small.held_out(t)}
    held_large = {t for t in texts if large.held_out(t)}
    # Binomial(50,000, p): within 5 standard deviations of the expected count.
    assert abs(len(held_small) - 500) < 5 * (50_000 * 0.01 * 0.99) ** 0.5
    assert abs(len(held_large) - 2500) < 5 * (50_000 * 0.05 * 0.95) ** 0.5
    assert held_small <= held_large


def test_the_decision_depends_on_the_content_only():
    rule = HoldoutRule(0.3)
    texts = [f"texto número {i}" for i in range(300)]
    first = [rule.held_out(t) for t in texts]
    assert [rule.held_out(t) for t in reversed(texts)] == first[::-1]
    assert any(first) and not all(first)


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, True, "0.1"])
def test_a_fraction_outside_the_open_interval_is_refused_naming_the_key(bad):
    with pytest.raises(TTLError, match=r"data.val_fraction=.*strictly between 0 and 1"):
        check_fraction(bad)
    with pytest.raises(TTLError, match=r"data.val_fraction=.*strictly between 0 and 1"):
        DataSettings(path="x", seq_len=8, val_fraction=bad).validate()


def test_a_count_becomes_the_share_of_the_known_total():
    assert rule_for(0.01, 18_000, 10_564_643, "train").fraction == pytest.approx(18_000 / 10_564_643)
    assert rule_for(0.02, None, None, "train").fraction == 0.02
    with pytest.raises(TTLError, match="data.val_documents=0: expected a positive integer"):
        rule_for(0.01, 0, 100, "train")
