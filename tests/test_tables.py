"""ttl.tables: the model card's number formats."""

import pytest

from ttl.tables import format_quantity, format_tokens


@pytest.mark.parametrize("tokens, text", [(950, "950"), (204_800, "204.8K"), (8_192_000, "8.2M"),
                                          (9_830_400_000, "9.8B"), (None, "-")])
def test_format_tokens(tokens, text):
    assert format_tokens(tokens) == text


@pytest.mark.parametrize("value, text", [(15.5, "15.50"), (0.0099, "0.0099"), (6.1e-05, "0.000061"),
                                         (0.0, "0.00"), (None, "-"), (float("nan"), "-")])
def test_format_quantity_keeps_two_significant_digits_of_small_values(value, text):
    assert format_quantity(value) == text
