"""The API's request parsers (DRF `DEFAULT_PARSER_CLASSES`).

`JSONParser` is DRF's, with one more guarantee: any body it cannot turn into data is a 400 `parse_error` in the
one error shape. DRF's own turns invalid JSON into that, but a body nested deeper than Python's recursion limit
(`[[[[…` a few thousand times, a few kilobytes) makes the decoder raise `RecursionError`, which reached the client
as a 500.
"""

from collections.abc import Mapping
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; a body nested too deeply to decode is a parse error (400), never a server error."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
