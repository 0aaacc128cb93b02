"""Fine-tuning of pre-trained ttl checkpoints, sequence classification or instruction tuning:
`python -m ttl.finetune task=<name> checkpoint=<dir>` (docs/finetuning.md)."""
