"""`python -m ttl.evaluate [harness] key=value ...`: perplexity, or lm-eval with `harness` first."""

import sys

from ttl.evaluate.cli import run_main


def main(argv: list[str] | None = None) -> int:
    """Dispatch: `harness ...` runs lm-evaluation-harness, anything else perplexity."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "harness":
        from ttl.evaluate.harness import main as harness_main

        return run_main("ttl.evaluate harness", harness_main, args[1:])
    from ttl.evaluate.run import main as perplexity_main

    return run_main("ttl.evaluate", perplexity_main, args)


if __name__ == "__main__":
    sys.exit(main())
