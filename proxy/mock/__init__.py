"""The mock backend: answers in every dialect with no network and no key.

Pure: `answer` turns a parsed request into an `Answer` (a body, or SSE events with
the pause before each). The server writes it out; nothing here does I/O.
"""

from proxy.mock.answer import answer, as_json_array
from proxy.mock.answerable import check_answerable
from proxy.mock.content import MockContext
from proxy.mock.draft import Answer
from proxy.mock.simulate import Occurrences

__all__ = ["Answer", "MockContext", "Occurrences", "answer", "as_json_array", "check_answerable"]
