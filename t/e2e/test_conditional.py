"""Conditional polls against the helper: its unchanged document is answered 304.

Starlette sends the helper's tag as "etag", in lower case: a gateway that
looked for "ETag" alone would never send If-None-Match, and every poll
would fetch and parse the whole document again.
"""

import pytest

from support import ALL_HEALTHY, wait_until

# the services are polled every second; the first poll after a change fetches
DEADLINE = 10.0
# uvicorn's access log line for a poll answered 304
NOT_MODIFIED = '"GET /health?include_routes=true HTTP/1.1" 304'


@pytest.mark.parametrize("name", ["chat", "users"])
def test_unchanged_helper_document_is_answered_304(client, gateway, services, name):
    service = services[name]
    start = len(service.log_text())

    polls = wait_until(lambda: service.log_text()[start:],
                       lambda text: NOT_MODIFIED in text, DEADLINE,
                       message=f"a poll of {name} answered 304")

    # the whole document was fetched at most once since: the first poll
    # after the service (re)started, say
    fetched = polls.count('"GET /health?include_routes=true HTTP/1.1" 200')
    assert fetched <= 1, polls
    # a 304 is a good poll: the routes stay and the service is healthy
    assert gateway.states() == ALL_HEALTHY
    path = "/chat/history/7" if name == "chat" else "/users/1"
    assert client.get(path).status_code == 200
