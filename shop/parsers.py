"""Request body parsing: DRF's JSON parser with a bound on nesting.

`json.loads` recurses once per level of nesting. A body such as
`[[[[...]]]]` a thousand levels deep exhausts the interpreter's stack and
raises RecursionError, which is not the ValueError DRF turns into a 400, so
it escaped as a 500. A shallower body that still parses can blow the stack
later, when checkout digests the body for its idempotency fingerprint. No
request of this API nests deeper than four levels.
"""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_JSON_DEPTH = 32


def _depth_exceeds(data, limit: int) -> bool:
    """Whether `data` nests deeper than `limit`, measured without recursion."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            if depth > limit:
                return True
            stack.extend((member, depth + 1) for member in value)
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        message = (
            f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels; "
            "send a flatter body."
        )
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(message) from None
        if _depth_exceeds(data, MAX_JSON_DEPTH):
            raise ParseError(message)
        return data
