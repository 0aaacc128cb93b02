"""Raw text sources, packing into fixed-length token blocks, and the Lightning DataModule."""
