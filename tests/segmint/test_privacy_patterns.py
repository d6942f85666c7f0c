"""The prefix-tree pattern the erasure searches files with (segmint/privacy.py) finds what a
plain alternation of the same words finds."""

import re

from hypothesis import given
from hypothesis import strategies as st

from segmint.privacy import literal_trie_pattern

# A small alphabet, regular-expression characters included, so that words share prefixes,
# contain one another and need escaping.
_words = st.text(alphabet="ab.+c@(", min_size=1, max_size=6)


@given(
    words=st.sets(_words, min_size=1, max_size=30), text=st.text(alphabet="ab.+c@( x", max_size=60)
)
def test_the_tree_finds_a_word_exactly_where_the_alternation_does(words, text):
    tree = re.compile(literal_trie_pattern(words))
    flat = re.compile("|".join(re.escape(w) for w in words))
    tree_hit, flat_hit = tree.search(text), flat.search(text)
    assert (tree_hit is not None) == (flat_hit is not None) == any(w in text for w in words)
    if flat_hit:
        assert tree_hit.start() == flat_hit.start()
    assert all(tree.fullmatch(w) for w in words)


def test_prefixes_of_one_another_are_all_found():
    pattern = re.compile(literal_trie_pattern(["ab", "abc", "abcd", "x+1"]))
    assert pattern.pattern == r"(?:ab(?:c(?:d)?)?|x\+1)"
    assert [pattern.search(t) is not None for t in ("zab", "abc", "x+1", "x1", "a b")] == [
        True, True, True, False, False,
    ]  # fmt: skip
