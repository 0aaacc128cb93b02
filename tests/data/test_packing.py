"""ttl.data.packing: the two packing conventions and block cutting."""

from ttl.data.packing import Packer, tokenize_documents


def test_ttl_packing_prefixes_bos_and_no_eos(tiny_tokenizer):
    docs = tokenize_documents(tiny_tokenizer, ["um texto", "outro"], "ttl")
    assert all(d[0] == 1 and d[-1] != 2 for d in docs)


def test_eos_packing_appends_eos(tiny_tokenizer):
    docs = tokenize_documents(tiny_tokenizer, ["um texto", "outro"], "eos")
    assert all(d[-1] == 2 and d[0] != 1 for d in docs)


def test_blocks_are_the_concatenation_cut_to_length_with_remainder_dropped(tiny_tokenizer):
    texts = ["primeiro documento sobre o cerrado", "", "segundo", "terceiro documento aqui"]
    packer = Packer(seq_len=5)
    blocks = list(packer.pack(texts, tiny_tokenizer, "ttl", batch_size=2))
    stream = [t for d in tokenize_documents(tiny_tokenizer, [t for t in texts if t], "ttl")
              for t in d]
    assert [t for b in blocks for t in b] == stream[: len(blocks) * 5]
    assert all(len(b) == 5 for b in blocks) and len(stream) - len(blocks) * 5 < 5
    assert packer.stats.empty_documents == 1 and packer.stats.documents == 3
