"""Configs of the commands other than train and finetune (their Hydra config_path): apart from
conf/'s groups, so that a key such as `tokenizer=DIR` is a value, not a group choice."""

# Each command's schema is registered by the command's own module: importing them all here
# would load every command's dependencies to run any one of them.
