"""A BERT-style tokenizer whose added tokens contain whitespace must not take the word-cache path.

Splitting such a text on whitespace (what the word cache does for every piece of a long text) breaks the added token
("read file" below) into its words, which tokenize to other ids than the whole text.
"""

from __future__ import annotations

import numpy as np
from tests.conftest import make_tokenizer
from tokenizers import AddedToken

from matryo import StaticEncoder
from matryo.texts import splits_on_whitespace


def test_an_added_token_holding_a_space_keeps_the_plain_tokenizer_path() -> None:
    tokenizer = make_tokenizer()
    assert splits_on_whitespace(tokenizer)
    tokenizer.add_tokens([AddedToken("read file", normalized=False)])
    assert not splits_on_whitespace(tokenizer)
    table = np.random.default_rng(0).standard_normal((tokenizer.get_vocab_size(with_added_tokens=True), 8))
    enc = StaticEncoder(table.astype(np.float32), tokenizer)
    assert enc._word_tokenizer is None
    text = "the cat read file by the river, read file"
    expected = tokenizer.encode(text, add_special_tokens=False).ids
    assert enc._token_ids([text], word_cache=True) == [expected]  # the call each long-text piece goes through
