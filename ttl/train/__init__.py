"""Pre-training: `python -m ttl.train [overrides]` (the Hydra entry in `__main__`).

    pretrain   the flow: config -> plan -> run directory -> model, data, callbacks -> fit -> export
    plan       checks of a composed config, tokens -> steps, gradient accumulation, Trainer args
    module     the LightningModule around Hugging Face's LlamaForCausalLM
    losses     next-token loss (Hugging Face's, or chunked without the full fp32 logits), z-loss
    optim      AdamW, Muon, and the learning-rate schedules
    sharding   FSDP2 through Lightning's ModelParallelStrategy
    loggers    W&B and CSV loggers
    sweep      Hydra multirun: one run directory per job, a summary table
    callbacks/ one callback per file: exports, emissions, throughput, samples, preemption, W&B step
"""
