"""The one rule for text that goes into PostgreSQL: no NUL character and no surrogate code point.

PostgreSQL `text` cannot hold U+0000, and a code point in U+D800–U+DFFF (a "lone surrogate", which JSON's
`"\\ud800"` escape and Python's `surrogateescape` produce) cannot be encoded as UTF-8: storing either fails (a
`ValueError` or `UnicodeEncodeError` from the driver). Input that must be kept as it came (a rejected message) is
escaped with `text_storable`; input that must mean something (a key, a lookup value) is refused when
`text_is_storable` is false.
"""

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_is_storable(text: str) -> bool:
    """True when `text` holds no NUL character and no surrogate code point (PostgreSQL can store it)."""
    if text.isascii():
        return "\x00" not in text
    return _UNSTORABLE.search(text) is None


def text_storable(text: str) -> str:
    """`text` with each NUL and surrogate code point written as its JSON escape (`\\u0000`, `\\ud800`), so that
    what was sent stays readable; every other character is kept. The result is storable; it is as long as `text`
    plus five characters for each one escaped."""
    if text_is_storable(text):
        return text
    return _UNSTORABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
