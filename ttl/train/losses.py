"""Next-token cross-entropy without materialising the whole logits tensor (`hardware.loss_impl`).

Hugging Face's loss builds the (tokens x vocabulary) logits of a micro-batch and upcasts them
to fp32: 4 x 2,048 x 32,000 x 4 bytes = 1 GiB per micro-batch of the 160m recipe, written and
read several times per step. `chunked` computes the loss and its gradients (softmax
cross-entropy's is known in closed form) chunk by chunk of tokens in the forward pass and scales
them in the backward pass: the fp32 logits of one chunk are all that ever exist. Plain PyTorch,
so that torch.compile fuses it. It agrees with `hf`, the default, to floating-point tolerance.
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100
LOSS_IMPLEMENTATIONS = ("hf", "chunked")


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of `hidden @ weight.T` (tokens x vocabulary) against `targets` (already
    shifted; -100 ignored), plus `z_loss` x the mean squared logsumexp, chunk by chunk of rows."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                chunk_size: int, z_loss: float = 0.0) -> torch.Tensor:
        valid = targets != IGNORE_INDEX
        count = valid.sum().clamp(min=1)
        # Logits and sums in fp32 at least (fp64 stays fp64), whatever autocast computes in.
        exact = torch.promote_types(weight.dtype, torch.float32)
        loss = torch.zeros((), dtype=exact, device=hidden.device)
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros(weight.shape, dtype=exact, device=weight.device)
        for start in range(0, hidden.shape[0], chunk_size):
            h = hidden[start:start + chunk_size]
            t = targets[start:start + chunk_size]
            keep = valid[start:start + chunk_size]
            logits = (h @ weight.t()).to(exact)
            log_norm = torch.logsumexp(logits, dim=-1)
            safe = t.clamp(min=0)
            picked = logits.gather(1, safe[:, None]).squeeze(1)
            loss = loss + torch.where(keep, log_norm - picked + z_loss * log_norm.square(), 0.0).sum()
            # d(mean loss)/d(logits) = ((1 + 2 z lse) softmax - one_hot) / count on kept rows.
            grad_logits = torch.softmax(logits, dim=-1) * (1 + 2 * z_loss * log_norm)[:, None]
            grad_logits.scatter_add_(1, safe[:, None], torch.full_like(picked[:, None], -1.0))
            grad_logits = grad_logits * (keep[:, None].float() / count)
            grad_logits = grad_logits.to(h.dtype)
            grad_hidden[start:start + chunk_size] = grad_logits @ weight.to(h.dtype)
            grad_weight += (grad_logits.t() @ h).to(exact)
        ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype))
        return loss / count

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        scale = grad_output.to(grad_hidden.dtype)
        return grad_hidden * scale, grad_weight * grad_output.to(grad_weight.dtype), None, None, None


def z_loss_term(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over predicted tokens of logsumexp(logits)^2 (PaLM's z-loss, before its coefficient):
    it keeps the softmax's normaliser near 1. `logits` and `labels` unshifted, as the model's."""
    log_norm = torch.logsumexp(logits[:, :-1].float(), dim=-1)
    keep = labels[:, 1:] != IGNORE_INDEX
    return (log_norm.square() * keep).sum() / keep.sum().clamp(min=1)


def causal_lm_loss(model, batch: dict[str, torch.Tensor], chunk_size: int = 1024,
                   z_loss: float = 0.0) -> torch.Tensor:
    """The mean next-token loss of a `LlamaForCausalLM` on `batch`, chunk by chunk: the value
    Hugging Face's `model(**batch).loss` gives (plus `z_loss` x `z_loss_term`), without the full
    logits."""
    labels = batch.get("labels", batch["input_ids"])
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    hidden = model.model(**inputs).last_hidden_state
    targets = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
    return _ChunkedLinearCrossEntropy.apply(hidden.reshape(-1, hidden.shape[-1]), model.lm_head.weight,
                                            targets.reshape(-1), chunk_size, z_loss)
