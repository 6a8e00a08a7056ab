"""The storable-text rule (common/text.py)."""

import pytest

from common.text import text_is_storable, text_storable


@pytest.mark.parametrize(
    ("text", "storable"),
    [
        ("", True),
        ("plain ascii", True),
        ("ünïcode €, 𝄞 and 😀", True),
        ("a\x00b", False),
        ("\x00", False),
        ("\ud800", False),
        ("x\udfffy", False),
        ("é\ud83d\ude00", False),  # a surrogate pair as two code points is still unencodable
        ("é\x00", False),
    ],
)
def test_text_is_storable_is_false_for_nul_and_surrogates_only(text, storable):
    assert text_is_storable(text) is storable
    encodable = "\x00" not in text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        encodable = False
    assert storable is encodable


def test_text_storable_escapes_what_cannot_be_stored_and_keeps_the_rest():
    assert text_storable("ok é 😀") == "ok é 😀"
    assert text_storable("a\x00b\ud800c\udfff") == "a\\u0000b\\ud800c\\udfff"
    assert text_is_storable(text_storable("\x00\ud800" * 10 + "é"))
