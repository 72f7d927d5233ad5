"""One JSON text into a document, with the limits every reader applies.

The JSON lines reader, the Python connector's JSON messages, REST bodies and JSON text stored
in a column (CSV fields, SQLite, PostgreSQL, Delta Lake) all go through
:func:`load_json_line`, so that a document nested too deep or holding half a surrogate pair is
a reported bad value everywhere, never a ``RecursionError`` that ends the run or a string that
no UTF-8 output can hold. It depends on nothing else of the package, so any decoder may use it.
"""

from __future__ import annotations

import json
import re
from typing import Any

# An escaped UTF-16 surrogate (``\\ud800``) in JSON text: valid only as half of a pair.
_SURROGATE_ESCAPE_TEXT = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")

#: The deepest nesting of arrays and objects a line may have, its outer object counted (as
#: in Pathway, whose reader refuses deeper lines). Deeper lines are reported, so that no
#: value reaching the engine is deep enough to exhaust Python's recursion limit later.
MAX_JSON_DEPTH = 127


def load_json_line(text: str) -> tuple[Any, str | None]:
    """The JSON document of one text (a line, a message, a stored value), or why it is
    refused (syntax, nesting, surrogates), as ``(document, reason)``."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc}"
    except RecursionError:
        return None, f"invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels"
    # Only a line with that many brackets can be that deep: the walk is rarely needed.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and depth_exceeds(
        document, MAX_JSON_DEPTH
    ):
        return None, f"invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels"
    if _SURROGATE_ESCAPE_TEXT.search(text) and has_lone_surrogate(document):
        return None, "invalid JSON: a string holds an unpaired UTF-16 surrogate (\\ud800-\\udfff)"
    return document, None


def depth_exceeds(document: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than ``limit`` (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return False


def has_lone_surrogate(document: Any) -> bool:
    """Whether a key or string of the document holds a surrogate code point, which no UTF-8
    text can carry (the JSON escaped half of a pair without the other half)."""
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
