from transformers import AutoTokenizer

from textdiff.data.batching import batch_indices, encode_sequences, pad_batch
from textdiff.data.tokenizer import round_trip_rate


def test_tokenizer_round_trips_and_loads_with_autotokenizer(small_tokenizer, review_texts, tmp_path):
    held_out = review_texts[1000:1200] + ["Café au lait — naïve façade, 100% “quoted”!", "  two  spaces "]
    assert round_trip_rate(small_tokenizer, held_out) == 1.0
    small_tokenizer.save_pretrained(str(tmp_path))
    again = AutoTokenizer.from_pretrained(str(tmp_path))
    text = review_texts[1001]
    assert again(text)["input_ids"] == small_tokenizer(text)["input_ids"]
    for special in ("<pad>", "<bos>", "<eos>", "<mask>"):
        assert special in again.get_vocab()
    assert len(again) == 600


def test_sequences_are_bos_text_eos_and_truncate(small_tokenizer):
    seqs = encode_sequences(small_tokenizer, ["A fine film.", "word " * 100], seq_len=10)
    bos, eos = small_tokenizer.bos_token_id, small_tokenizer.eos_token_id
    assert seqs[0][0] == bos and seqs[0][-1] == eos
    assert small_tokenizer.decode(seqs[0][1:-1]) == "A fine film."
    assert len(seqs[1]) == 10 and eos not in seqs[1]
    batch = pad_batch(seqs, small_tokenizer.pad_token_id)
    assert batch.shape == (2, 10) and (batch[0, len(seqs[0]):] == small_tokenizer.pad_token_id).all()


def test_batches_depend_only_on_step_and_cover_each_epoch():
    lengths = [i % 17 for i in range(100)]
    epoch = [i for step in range(10) for i in batch_indices(lengths, 10, step, seed=1)]
    assert sorted(epoch) == list(range(100))
    assert batch_indices(lengths, 10, 13, seed=1) == batch_indices(list(lengths), 10, 13, seed=1)
    assert batch_indices(lengths, 10, 3, seed=1) != batch_indices(lengths, 10, 3, seed=2)
    # bucketing keeps lengths within a batch close
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b)
              for b in (batch_indices(lengths, 10, s, seed=1) for s in range(10))]
    assert max(spread) <= 2
