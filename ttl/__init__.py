"""ttl: pre-train small Llama language models for Brazilian Portuguese (TeenyTinyLlama, faster)."""

__version__ = "0.1.0"
