"""Raw text sources, packing into fixed-length token blocks, prepared shards, and the DataModule
that trains from them (raw text is prepared into shards first, on first use; docs/data.md).

Why ours and not a streaming library: mosaicml-streaming (0.13.0, its latest release) requires
transformers<5, so it cannot be installed beside transformers 5; litdata's `TokensLoader` cuts
fixed-size blocks from one flat token array and keeps no document starts, which document
masking needs; `datasets`' `IterableDataset` loses the examples in its shuffle buffer on
resume (it refills the buffer with new data), so a resumed run would not see the same order.
"""
