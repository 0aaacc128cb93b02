"""Configs of the commands other than train and finetune (their Hydra config_path): apart from
conf/'s groups, so that a key such as `tokenizer=DIR` is a value, not a group choice."""
