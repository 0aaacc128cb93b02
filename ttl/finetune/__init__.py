"""Fine-tuning of pre-trained ttl checkpoints: `python -m ttl.finetune task=<name> checkpoint=<dir>`.

Two kinds of task (conf/finetune/task/): sequence classification (`LlamaForSequenceClassification`,
the five Portuguese tasks TeenyTinyLlama was fine-tuned on) and instruction tuning into a chat
model (`task=chat`). Both select the kept epoch on the validation split and export it as a
Hugging Face directory.
"""
