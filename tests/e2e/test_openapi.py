"""The OpenAPI document: valid 3.1, every route declared next to itself, typed parameters, only the error
answers a route can give; the docs page lists them."""

from __future__ import annotations

from openapi_spec_validator import validate

from crm_workers.domain.job_types import JOB_KINDS


def test_the_openapi_document_is_valid_and_every_route_is_declared(client, app):
    spec = client.get("/v1/crm/openapi.json").get_json()

    validate(spec)
    assert spec["openapi"] == "3.1.0"
    documented = {op["operationId"] for ops in spec["paths"].values() for op in ops.values()}
    routes = {
        r.endpoint for r in app.url_map.iter_rules() if r.endpoint != "static" and not r.endpoint.startswith("docs.")
    }
    assert routes == documented
    undeclared = sorted(e for e in routes if not hasattr(app.view_functions[e], "api_doc"))
    assert undeclared == [], "declare these routes with @api_doc (crm_api/openapi.py)"
    assert all(job_type in spec["info"]["description"] for job_type in JOB_KINDS)
    assert "ImportOptions" in spec["components"]["schemas"] and "Selection" in spec["components"]["schemas"]


def test_query_parameters_are_typed_and_a_route_lists_only_the_errors_it_can_give(client):
    paths = client.get("/v1/crm/openapi.json").get_json()["paths"]

    jobs = {p["name"]: p["schema"] for p in paths["/v1/crm/jobs"]["get"]["parameters"]}
    assert jobs["page"]["type"] == "integer" and jobs["per_page"]["maximum"] == 200
    assert jobs["after"]["pattern"] == "^[0-9a-fA-F]{24}$" and "$ref" in jobs["status"]
    assert (
        next(p for p in paths["/v1/crm/jobs/{job_id}"]["get"]["parameters"] if p["name"] == "job_id")["schema"][
            "pattern"
        ]
        == "^[0-9a-fA-F]{24}$"
    )

    def answers(path, method):
        return set(paths[path][method]["responses"])

    assert answers("/v1/crm/jobs/{job_id}", "get") == {"200", "304", "401", "404"}  # a service token may read
    assert answers("/v1/crm/tags/{tag_id}", "delete") == {"202", "401", "403", "404", "409", "422", "503"}
    assert answers("/healthz", "get") == {"200", "503"}
    assert answers("/metrics", "get") == {"200", "401"}
    assert answers("/v1/crm/contacts/import", "post") >= {"202", "400", "413", "415"}
    assert "429" not in answers("/v1/crm/contacts/import", "post")
    assert "Location" in paths["/v1/crm/tags/{tag_id}"]["delete"]["responses"]["202"]["headers"]


def test_the_docs_page_lists_every_path_without_a_token(client):
    page = client.get("/v1/crm/docs")

    assert page.status_code == 200
    for path in ("/v1/crm/contacts/import", "/v1/crm/jobs/{job_id}/undo", "/v1/crm/automations/trigger"):
        assert path in page.data.decode()
