"""The model card of a run's export (`python -m ttl.card run_dir=runs/NAME`): `render` fills
`template.md.j2`, `metadata` writes and refreshes the front matter, `tables` the card's tables."""
