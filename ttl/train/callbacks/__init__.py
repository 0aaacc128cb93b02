"""Lightning callbacks: Hugging Face checkpoint exports and the rest of a run's artifacts."""
