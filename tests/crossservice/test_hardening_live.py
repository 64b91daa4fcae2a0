"""The review's header, CORS and metrics findings, checked on the three services as they run."""

from __future__ import annotations

import httpx
import pytest

from tests.crossservice.conftest import CALLER_PATHS, SERVICES, LiveStack
from tests.support.problems import assert_problem

pytestmark = pytest.mark.crossservice

FRONT_END = "https://zhengzhi.jimo.example"


@pytest.mark.parametrize("service", SERVICES)
def test_answers_name_no_server_and_forbid_sniffing_and_caching(
    live_stack: LiveStack, http: httpx.Client, service: str
) -> None:
    for answer in (
        http.get(live_stack.urls[service] + "/healthz"),
        http.get(live_stack.urls[service] + CALLER_PATHS[service]),
    ):
        assert "server" not in answer.headers, answer.headers
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("service", SERVICES)
def test_a_64_kib_authorization_header_is_a_problem(
    live_stack: LiveStack, http: httpx.Client, service: str
) -> None:
    answer = http.get(
        live_stack.urls[service] + CALLER_PATHS[service], headers={"Authorization": "Bearer " + "A" * 65536}
    )
    assert_problem(answer, 431, "headers_too_large")


@pytest.mark.parametrize("service", SERVICES)
def test_a_browser_front_end_passes_its_preflight(
    live_stack: LiveStack, http: httpx.Client, service: str
) -> None:
    preflight = http.options(
        live_stack.urls[service] + CALLER_PATHS[service],
        headers={
            "Origin": FRONT_END,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == FRONT_END
    refused = http.options(
        live_stack.urls[service] + CALLER_PATHS[service],
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert_problem(refused, 400, "cors_preflight_refused")


@pytest.mark.parametrize("service", SERVICES)
def test_made_up_methods_mint_no_metric_series(
    live_stack: LiveStack, http: httpx.Client, service: str
) -> None:
    base = live_stack.urls[service]
    for n in range(30):
        http.request(f"BBQAZ{n}", base + CALLER_PATHS[service])
        http.get(f"{base}/v1/made-up-{n}")
    metrics = http.get(base + "/metrics").text
    assert "BBQAZ" not in metrics and "made-up" not in metrics
    assert 'method="OTHER"' in metrics
