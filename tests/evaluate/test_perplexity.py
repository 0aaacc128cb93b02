"""ttl.evaluate.perplexity: sliding windows, and perplexities equal to the model's own loss."""

import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from ttl.errors import TTLError
from ttl.evaluate.perplexity import perplexity_packed, perplexity_sliding, sliding_windows


def test_sliding_windows_predict_every_token_once():
    windows = sliding_windows(10, seq_len=4, stride=2)
    assert windows == [(0, 4, 4), (2, 6, 2), (4, 8, 2), (6, 10, 2)]
    # The first window predicts seq_len - 1 tokens (the shift drops position 0), each later one
    # its target_len new tokens: n - 1 tokens in all.
    assert windows[0][2] - 1 + sum(t for _, _, t in windows[1:]) == 10 - 1
    with pytest.raises(TTLError, match="stride=5"):
        sliding_windows(10, seq_len=4, stride=5)


@pytest.mark.slow
def test_perplexities_match_the_models_own_loss(quickstart_run):
    model = AutoModelForCausalLM.from_pretrained(quickstart_run / "step-150").eval()
    generator = torch.Generator().manual_seed(0)
    blocks = torch.randint(4, 2048, (3, 128), generator=generator)
    with torch.no_grad():
        losses = [model(input_ids=b[None], labels=b[None]).loss.item() for b in blocks]
        packed = perplexity_packed(model, blocks, batch_size=2)
        # A stream that fits one window: whatever the stride, one forward pass scores it all.
        stream = blocks[0][:100]
        single = model(input_ids=stream[None], labels=stream[None]).loss.item()
        sliding = perplexity_sliding(model, stream, seq_len=128, stride=32)
        # Longer than a window: overlapping windows give every token context, yet each token once.
        long = torch.cat(list(blocks))
        overlapping = perplexity_sliding(model, long, seq_len=128, stride=64, batch_size=3)
    assert packed.tokens == 3 * 127 and packed.ppl == pytest.approx(math.exp(sum(losses) / 3), rel=1e-5)
    assert sliding.tokens == 99 and sliding.ppl == pytest.approx(math.exp(single), rel=1e-5)
    assert overlapping.tokens == long.numel() - 1
