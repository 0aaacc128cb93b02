"""Raw text sources, packing into fixed-length token blocks, prepared shards, and the DataModule
that trains from them (raw text is prepared into shards first, on first use).

    sources      documents from local parquet / jsonl / txt files or a Hub dataset
    packing      the `ttl` and `eos` conventions; rows with their document starts
    wordcache    an exact, word-cached fast path over the `tokenizers` library
    prepare      `python -m ttl.data.prepare`: raw text -> packed parquet shards + manifest
    shardset     building a shard set file by file, resumably (prepare and cache use it)
    cache        data.format=auto: raw text prepared into data.prepared_dir on first use
    shards       writing and reading shards row group by row group
    manifest     manifest.json: fingerprints, counts, shards; checks against a run
    order        the seeded order of an epoch and how it is dealt to ranks
    streams      iterable datasets of micro-batches (shards, validation)
    batches      packed rows -> batch dicts (position ids for document masking)
    datamodule   TTLDataModule (shards, resume position) and datamodule(), what ttl.train builds

Why ours and not a streaming library: mosaicml-streaming (0.13.0, its latest release) requires
transformers<5, so it cannot be installed beside transformers 5; litdata's `TokensLoader` cuts
fixed-size blocks from one flat token array and keeps no document starts, which document
masking needs; `datasets`' `IterableDataset` loses the examples in its shuffle buffer on
resume (it refills the buffer with new data), so a resumed run would not see the same order.
"""
