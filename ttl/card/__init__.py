"""The model card of a run's export: `python -m ttl.card run_dir=runs/NAME` (`__main__`).

`render` reads the run and fills `template.md.j2` (the card's prose); `metadata` holds the front
matter and its `model-index`, and refreshes a published one; `tables` the card's tables;
`results` the rows of `python -m ttl.evaluate harness` results.
"""
