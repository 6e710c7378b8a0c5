"""Pieces of the ACME workflow that Pebble 2.4 cannot show: profiles and Retry-After forms."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from acme_client import protocol


class _Response:
    def __init__(self, data: dict, headers: dict):
        self._data = data
        self.headers = headers

    def json(self) -> dict:
        return self._data


class _CA:
    """Stands in for ClientV2 to see the newOrder payload the client sends."""

    directory = {"newOrder": "https://ca.test/new-order"}

    def __init__(self):
        self.sent = []

    def _post(self, url, payload):
        self.sent.append((url, payload))
        body = {
            "status": "pending",
            "identifiers": [{"type": "dns", "value": "shop.example.test"}],
            "authorizations": [],
            "finalize": "https://ca.test/finalize/1",
        }
        return _Response(body, {"Location": "https://ca.test/order/1"})


def _place(profile: str):
    ca = _CA()
    order = protocol._order_place(
        ca,
        csr_pem=b"",
        hostname="shop.example.test",
        profile=profile,
        deadline=protocol.deadline_in(5),
    )
    return ca.sent[0][1], order


def test_the_configured_profile_is_asked_for_in_the_new_order():
    payload, order = _place("shortlived")
    assert payload.profile == "shortlived"
    assert payload.identifiers[0].value == "shop.example.test"
    assert order.uri == "https://ca.test/order/1"


def test_no_profile_is_sent_when_none_is_configured():
    payload, _ = _place("")
    assert "profile" not in payload.to_partial_json()


def test_retry_after_is_read_in_seconds_or_as_an_http_date():
    assert protocol._retry_after_seconds("7") == 7
    assert protocol._retry_after_seconds(None) is None
    assert protocol._retry_after_seconds("soon") is None
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(minutes=1), usegmt=True)
    assert 50 < protocol._retry_after_seconds(in_a_minute) <= 60


def test_polls_start_short_and_grow_to_a_cap():
    intervals = []
    for pause in protocol._poll_intervals(protocol.deadline_in(60)):
        intervals.append(pause)
        if len(intervals) == 12:
            break
    assert intervals[0] == protocol.POLL_FIRST
    assert intervals == sorted(intervals)
    assert intervals[-1] == protocol.POLL_MAX
