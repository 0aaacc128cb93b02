"""ttl.data.packing: the two packing conventions and block cutting."""

import numpy as np

from ttl.data.packing import RowPacker, encode_documents, position_ids_for


def reference(tokenizer, texts: list[str], packing: str) -> list[list[int]]:
    """Each document's ids in a convention, straight from the tokenizer call."""
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    if packing == "ttl":
        return [[tokenizer.bos_token_id, *d] for d in ids]
    return [[*d, tokenizer.eos_token_id] for d in ids]


def test_ttl_packing_prefixes_bos_and_no_eos(tiny_tokenizer):
    flat, lengths = encode_documents(tiny_tokenizer, ["um texto", "outro"], "ttl")
    docs = np.split(flat, np.cumsum(lengths)[:-1])
    assert all(d[0] == 1 and d[-1] != 2 for d in docs)


def test_eos_packing_appends_eos(tiny_tokenizer):
    flat, lengths = encode_documents(tiny_tokenizer, ["um texto", "outro"], "eos")
    docs = np.split(flat, np.cumsum(lengths)[:-1])
    assert all(d[-1] == 2 and d[0] != 1 for d in docs)


def test_row_packer_cuts_the_concatenation_and_records_document_starts(tiny_tokenizer):
    texts = ["primeiro documento sobre o cerrado", "segundo", "terceiro documento aqui",
             "quarto e último documento desta lista de testes"]
    stream = [t for d in reference(tiny_tokenizer, texts, "ttl") for t in d]
    expected = [stream[i:i + 7] for i in range(0, len(stream) - 6, 7)]
    packer = RowPacker(seq_len=7)
    rows = [packer.add(*encode_documents(tiny_tokenizer, [t], "ttl")) for t in texts]
    ids = np.concatenate([r.ids for r in rows])
    starts = [s for r in rows for s in r.doc_starts]
    assert ids.tolist() == expected
    # A document starts wherever <s> (id 1) sits in the `ttl` convention.
    assert [s.tolist() for s in starts] == [np.flatnonzero(row == 1).tolist() for row in ids]
    # The manifest's counts: rows and packed tokens, and the tail held back.
    assert packer.stats.documents == 4 and packer.stats.rows == len(ids) and packer.stats.tokens == ids.size
    assert packer.remainder == packer.stats.dropped_tokens == len(stream) - ids.size


def test_encode_documents_matches_the_tokenizer_call(tiny_tokenizer):
    texts = ["Olá, ação!", "uma <s> literal", "x"]
    for packing in ("ttl", "eos"):
        flat, lengths = encode_documents(tiny_tokenizer, texts, packing)
        docs = reference(tiny_tokenizer, texts, packing)
        assert flat.tolist() == [t for d in docs for t in d]
        assert lengths.tolist() == [len(d) for d in docs]


def test_a_document_longer_than_a_row_continues_in_the_next_rows(tiny_tokenizer):
    long_text = " ".join(f"palavra{i}" for i in range(200))
    flat, lengths = encode_documents(tiny_tokenizer, [long_text, "fim"], "ttl")
    packer = RowPacker(seq_len=16)
    rows = packer.add(flat, lengths)
    assert lengths[0] > 3 * 16 and packer.stats.long_documents == 1
    assert rows.ids.ravel().tolist() == flat[: rows.ids.size].tolist()
    assert rows.doc_starts[0].tolist() == [0] and all(len(s) == 0 for s in rows.doc_starts[1:-1])


def test_position_ids_restart_at_row_and_document_starts():
    positions = position_ids_for([np.array([0, 3]), np.array([2])], 5)
    assert positions.tolist() == [[0, 1, 2, 0, 1], [0, 1, 0, 1, 2]]


def test_word_cache_encoder_gives_the_library_ids(tiny_tokenizer, sample_dir):
    from ttl.data.sources import iter_documents, resolve_source
    from ttl.data.wordcache import encoder_for

    encoder = encoder_for(tiny_tokenizer)
    assert encoder is not None and encoder_for(tiny_tokenizer) is encoder
    tricky = ["  dois espaços", "a\tb\nc", "▁já começa", "fim ", "emoji 😀 e ﬁ", "uma <s> literal",
              "", "   ", "x  y   z", "Ünïcödé\u00a0nbsp"]
    source = resolve_source(str(sample_dir), "train", "text", "train", "validation", 0.1)
    corpus = list(iter_documents(source))
    backend = tiny_tokenizer.backend_tokenizer
    for texts in (tricky, corpus, corpus):  # twice: the second pass is served from the cache
        expected = [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]
        assert encoder.encode(texts) == expected
