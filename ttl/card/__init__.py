"""The model card of a run's export: `python -m ttl.card run_dir=runs/NAME` (the Hydra entry in
`__main__`).

    render    the card's text from the run directory (its config and every export's figures)
    tables    the Evaluations table and the benchmark tables of TeenyTinyLlama's card
    results   the rows of `python -m ttl.evaluate harness` results, as the card reads them
"""
