"""The model card of a run's export: `python -m ttl.card run_dir=runs/NAME` (the Hydra entry in
`__main__`; `push_metadata_to=user/model` refreshes a published card's model-index).

    render          the card of an export: reads the run, fills the template, checks the card
    template.md.j2  the card's body (all its prose), a Jinja2 template
    metadata        the front matter (huggingface_hub.ModelCardData, its model-index of
                    EvalResults), its local check, and the refresh of a published card
    tables          the Evaluations table and the benchmark tables of TeenyTinyLlama's card
    results         the rows of `python -m ttl.evaluate harness` results, as the card reads them
"""
