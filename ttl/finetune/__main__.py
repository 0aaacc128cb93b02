"""`python -m ttl.finetune task=<name> checkpoint=<dir or Hub id>` (see ttl.finetune.cli)."""

from ttl.finetune.cli import main

if __name__ == "__main__":
    main()
