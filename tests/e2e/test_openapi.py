"""The OpenAPI document: valid 3.1, every endpoint, error code and job type in it; the docs page lists them."""

from __future__ import annotations

from openapi_spec_validator import validate

from crm_api.openapi import ENDPOINTS, ERRORS
from crm_workers.domain.job_types import JOB_KINDS


def test_the_openapi_document_is_valid_and_complete(client, app):
    spec = client.get("/v1/crm/openapi.json").get_json()

    validate(spec)
    assert spec["openapi"] == "3.1.0"
    documented = {op["operationId"] for ops in spec["paths"].values() for op in ops.values()}
    routes = {r.endpoint for r in app.url_map.iter_rules()
              if r.endpoint != "static" and not r.endpoint.startswith("docs.")}
    assert routes == documented and routes <= set(ENDPOINTS)
    for ops in spec["paths"].values():
        for op in ops.values():
            assert set(ERRORS) - {"401"} <= set(op["responses"])
    assert all(job_type in spec["info"]["description"] for job_type in JOB_KINDS)
    assert "ImportOptions" in spec["components"]["schemas"] and "Selection" in spec["components"]["schemas"]


def test_the_docs_page_lists_every_path_without_a_token(client):
    page = client.get("/v1/crm/docs")

    assert page.status_code == 200
    for path in ("/v1/crm/contacts/import", "/v1/crm/jobs/{job_id}/undo", "/v1/crm/automations/trigger"):
        assert path in page.data.decode()
