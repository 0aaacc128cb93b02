"""ttl's Hydra configs. The YAML files extend schemas (dataclasses and signatures, `ttl.cli`)
with only what differs; importing this package, as Hydra does to read `pkg://ttl.conf`,
registers the training schemas, so any composition of these files finds them."""

import ttl.train.config  # noqa: F401  (registers the schemas on import)
