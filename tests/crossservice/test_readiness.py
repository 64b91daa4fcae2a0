"""Health, readiness, metrics and request ids on the three running services."""

from __future__ import annotations

import re

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.crossservice.conftest import CALLER_PATHS, SERVICES, LiveStack
from tests.support.problems import assert_unauthorized

pytestmark = pytest.mark.crossservice

# What each service's readiness looks at: its own parts, never a peer service.
OWN_CHECKS = {
    "issues": {"database": "ok"},
    "scoring": {"database": "ok"},
    "media": {"database": "ok", "object_store": "ok"},
}


def assert_alive_and_ready(http: httpx.Client, live_stack: LiveStack, service: str) -> None:
    url = live_stack.urls[service]
    health = http.get(url + "/healthz")
    assert health.status_code == 200, health.text
    assert health.json() == {"status": "ok", "service": service}
    ready = http.get(url + "/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "service": service, "checks": OWN_CHECKS[service]}


@pytest.mark.parametrize("service", SERVICES)
def test_healthz_and_readyz_report_only_the_services_own_parts(
    live_stack: LiveStack, http: httpx.Client, service: str
) -> None:
    assert_alive_and_ready(http, live_stack, service)


def _requests_total(http: httpx.Client, url: str, route: str, status: str) -> float:
    r = http.get(url + "/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            if (
                sample.name == "http_requests_total"
                and sample.labels.get("route") == route
                and sample.labels.get("status") == status
            ):
                return sample.value
    return 0.0


@pytest.mark.parametrize("service", SERVICES)
def test_metrics_count_each_request_by_route_and_status(
    live_stack: LiveStack, http: httpx.Client, service: str
) -> None:
    url, route = live_stack.urls[service], CALLER_PATHS[service]
    before = _requests_total(http, url, route, "401")
    assert http.get(url + route).status_code == 401
    assert _requests_total(http, url, route, "401") == before + 1


@pytest.mark.parametrize("service", SERVICES)
def test_request_id_sent_comes_back_in_header_and_problem_body(
    live_stack: LiveStack, http: httpx.Client, service: str
) -> None:
    url = live_stack.urls[service]
    r = http.get(url + CALLER_PATHS[service], headers={"X-Request-ID": "crossservice-req-0001"})
    assert r.status_code == 401
    assert r.headers["x-request-id"] == "crossservice-req-0001"
    assert r.json()["request_id"] == "crossservice-req-0001"
    # An id that could smuggle log lines is replaced, not echoed.
    replaced = http.get(url + "/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])


def test_scoring_and_media_stay_ready_while_the_issuer_is_down(
    live_stack: LiveStack, http: httpx.Client
) -> None:
    token = live_stack.login(http, "officer")
    assert live_stack.caller(http, "scoring", token).status_code == 200  # JWKS now cached in scoring
    live_stack.stop_service("issues")
    try:
        for service in ("scoring", "media"):
            assert_alive_and_ready(http, live_stack, service)
        # Keys already fetched keep verifying while the issuer is down; an unknown kid is a 401, not a 500.
        assert live_stack.caller(http, "scoring", token).status_code == 200
        forged = live_stack.sign(live_stack.claims(), kid="19990101T000000-0badc0de")
        assert_unauthorized(live_stack.caller(http, "scoring", forged))
    finally:
        live_stack.start_service("issues")
    for service in SERVICES:
        assert_alive_and_ready(http, live_stack, service)


def test_the_issuer_and_scoring_stay_ready_while_media_is_down(
    live_stack: LiveStack, http: httpx.Client
) -> None:
    live_stack.stop_service("media")
    try:
        for service in ("issues", "scoring"):
            assert_alive_and_ready(http, live_stack, service)
        # The issuer goes on issuing tokens that scoring accepts.
        token = live_stack.login(http, "officer")
        assert live_stack.caller(http, "scoring", token).status_code == 200
    finally:
        live_stack.start_service("media")
    assert_alive_and_ready(http, live_stack, "media")
