"""Property-based requests (schemathesis, from our OpenAPI document) against the live API: never a 5xx, and
never a status the route's declaration does not list."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.slow


def test_no_request_built_from_the_openapi_document_gets_a_5xx(app, db, live_api):
    from crm_api.openapi import build_spec
    from tests.conftest import Tenant

    with app.app_context():
        schema = schemathesis.openapi.from_dict(build_spec(app))
    base_url, headers = live_api, Tenant(db).headers()
    failures, statuses = [], []
    for operation in schema.get_all_operations():
        op = operation.ok()
        if op.path.startswith("/files/"):
            continue

        @settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def check(case):
            response = case.call(base_url=base_url, headers=headers)
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")
            elif str(response.status_code) not in (documented := set(case.operation.definition.raw["responses"])):
                failures.append(
                    f"{case.method} {case.formatted_path}: {response.status_code} is not declared "
                    f"{sorted(documented)}: {response.text[:200]}"
                )

        check()
    assert failures == []
    assert len(statuses) >= 3 * len(list(schema.get_all_operations())) - 3  # it really called every endpoint
    print(sorted(set(statuses)))
