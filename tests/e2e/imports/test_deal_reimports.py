"""Deals like contacts: upserts by external id, pipelines and stages created on demand, modes, statuses as
other systems write them, and re-imports that change nothing; the deal exports of other systems in
../shared/realworld imported twice."""

from __future__ import annotations

import csv
import io

import pytest
from bson import ObjectId

from crm_workers.jobs import now
from tests.conftest import wait_for_job
from tests.e2e.imports.helpers import add_pipeline, run_import, upload
from tests.realworld import REALWORLD, samples


def deals(db, account_id) -> list[dict]:
    return list(db["crm.deals"].find({"account_id": account_id}).sort("_id", 1))


def by_id(db, account_id) -> dict:
    return {d["external_id"]: d for d in deals(db, account_id) if "external_id" in d}


def structure(db, account_id) -> dict:
    return {
        name: list(db[name].find({"account_id": account_id}).sort("_id", 1))
        for name in ("crm.pipelines", "crm.pipeline.stages", "crm.contacts", "crm.tags")
    }


def stage_names(db, account_id, pipeline_name) -> list[str]:
    pipeline = db["crm.pipelines"].find_one({"account_id": account_id, "name": pipeline_name})
    return [
        s["name"]
        for s in db["crm.pipeline.stages"]
        .find({"account_id": account_id, "pipeline_id": pipeline["_id"]})
        .sort("position", 1)
    ]


def import_deals(client, db, tenant, content: bytes, options: dict | None = None, **kwargs) -> dict:
    return run_import(client, db, tenant, content, "deals.csv", options, entity="deals", **kwargs)


# ------------------------------------------------------------------ the samples of other systems

# The columns each sample needs named while matching does not know them (an id column; Zoho's `Potential
# Name` and `Closing Date`). The others are today's matches, listed because a mapping given is the whole
# mapping until partial mappings land (then only the first entries are needed).
SAMPLES = {
    "hubspot-style-deals-synthetic.csv": (
        {
            "Deal ID": "external_id",
            "Deal Name": "name",
            "Deal Stage": "stage",
            "Pipeline": "pipeline",
            "Amount": "value",
            "Close Date": "expected_close_date",
        },
        {},
    ),
    "salesforce-dataloader-opportunities.csv": (
        {
            "ID": "external_id",
            "NAME": "name",
            "STAGENAME": "stage",
            "AMOUNT": "value",
            "CLOSEDATE": "expected_close_date",
        },
        {"pipeline": "Salesforce"},
    ),
    "zoho-analytics-potentials.csv": (
        {
            "LEADID": "external_id",
            "Potential Name": "name",
            "Stage": "stage",
            "Amount": "value",
            "Closing Date": "expected_close_date",
        },
        {"pipeline": "Zoho"},
    ),
}


def _first_appearances(rows: list[dict], mapping: dict, default_pipeline: str | None) -> dict[str, list[str]]:
    column = {target: header for header, target in mapping.items()}
    order: dict[str, list[str]] = {}
    for row in rows:
        pipeline = row[column["pipeline"]].strip() if "pipeline" in column else default_pipeline
        stages = order.setdefault(pipeline, [])
        if row[column["stage"]].strip() not in stages:
            stages.append(row[column["stage"]].strip())
    return order


@samples
@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_a_deals_export_of_another_system_imports_and_a_second_import_creates_and_changes_nothing(
    client, db, worker, tenant, sample
):
    mapping, extra = SAMPLES[sample]
    content = (REALWORLD / sample).read_bytes()
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    options = {"mapping": mapping, "create_missing": True, **extra}

    first = import_deals(client, db, tenant, content, options, timeout=240)

    counts = first["result"]["counts"]
    assert first["status"] == "completed" and counts["created"] >= 0.95 * len(rows) and counts["failed"] == 0
    imported = by_id(db, tenant.account_id)
    column = {target: header for header, target in mapping.items()}
    for row in rows[:50]:
        deal = imported[row[column["external_id"]]]
        stage = db["crm.pipeline.stages"].find_one({"_id": deal["stage_id"]})
        assert deal["name"] == row[column["name"]].strip() and stage["name"] == row[column["stage"]].strip()
        if amount := row[column["value"]].replace("$", "").replace(",", ""):
            assert deal["value"]["amount"] == pytest.approx(float(amount)) and deal["value"]["currency"] == "USD"
        else:
            assert "value" not in deal
        ending = {"Closed Won": "won", "Closed Lost": "lost"}.get(row[column["stage"]].strip(), "open")
        assert deal["status"] == ending
    for pipeline, stages in _first_appearances(rows, mapping, extra.get("pipeline")).items():
        assert stage_names(db, tenant.account_id, pipeline) == stages
    before, around = deals(db, tenant.account_id), structure(db, tenant.account_id)

    second = import_deals(client, db, tenant, content, options, timeout=240)

    assert second["result"]["counts"] == {"created": 0, "updated": counts["created"], "skipped": 0, "failed": 0}
    assert second["result"]["unchanged"] == counts["created"]
    assert deals(db, tenant.account_id) == before and structure(db, tenant.account_id) == around


# ------------------------------------------------------------------ pipelines and stages


def test_without_create_missing_a_row_naming_a_missing_pipeline_or_stage_fails_with_the_name(
    client, db, worker, tenant
):
    add_pipeline(db, tenant.account_id, "Sales", stages=("Lead", "Won"))
    content = b"Deal ID,Deal Name,Pipeline,Stage\n1,A,Sales,Lead\n2,B,Renewals,Lead\n3,C,Sales,Negotiation\n"

    job = import_deals(
        client,
        db,
        tenant,
        content,
        {"mapping": {"Deal ID": "external_id", "Deal Name": "name", "Pipeline": "pipeline", "Stage": "stage"}},
    )

    assert job["result"]["counts"] == {"created": 1, "updated": 0, "skipped": 0, "failed": 2}
    errors = [e["error"] for e in db["crm.import.errors"].find({"job_id": job["_id"]}).sort("row", 1)]
    assert errors == ["row 3: no pipeline named 'Renewals'", "row 4: no stage named 'Negotiation' in pipeline 'Sales'"]
    assert db["crm.pipelines"].count_documents({"account_id": tenant.account_id}) == 1
    assert db["crm.pipeline.stages"].count_documents({"account_id": tenant.account_id}) == 2


def test_create_missing_makes_pipelines_and_appends_stages_in_the_order_the_file_names_them(client, db, worker, tenant):
    add_pipeline(db, tenant.account_id, "Sales", stages=("Lead", "Won"))
    content = (
        b"Deal Name,Pipeline,Stage\nA,Sales,Demo\nB,Renewals,Due\nC,sales,Lead\nD,Renewals,Signed\n"
        b"E,Sales,Trial\nF,Renewals,Due\n"
    )

    job = import_deals(client, db, tenant, content, {"create_missing": True})

    assert job["result"]["counts"]["created"] == 6
    assert stage_names(db, tenant.account_id, "Sales") == ["Lead", "Won", "Demo", "Trial"]
    assert stage_names(db, tenant.account_id, "Renewals") == ["Due", "Signed"]
    renewals = db["crm.pipelines"].find_one({"account_id": tenant.account_id, "name": "Renewals"})
    assert renewals["currency"] == "USD"
    assert db["crm.pipelines"].count_documents({"account_id": tenant.account_id}) == 2


def test_options_pipeline_by_name_or_id_is_the_pipeline_of_rows_naming_none(client, db, worker, tenant):
    sales, (lead, _) = add_pipeline(db, tenant.account_id, "Sales", stages=("Lead", "Won"))
    other, (first, _) = add_pipeline(db, tenant.account_id, "Other", stages=("Start", "End"))
    content = b"Deal Name,Pipeline\nNone named,\nNamed,Other\n"

    by_name = import_deals(client, db, tenant, content, {"pipeline": "sales"})
    by_id = import_deals(client, db, tenant, b"Deal Name\nBy id\n", {"pipeline": str(other)})

    assert by_name["result"]["counts"]["created"] == 2 and by_id["result"]["counts"]["created"] == 1
    placed = {d["name"]: (d["pipeline_id"], d["stage_id"]) for d in deals(db, tenant.account_id)}
    assert placed == {"None named": (sales, lead), "Named": (other, first), "By id": (other, first)}


@pytest.mark.parametrize(
    "options,field",
    [
        ({"pipeline": "Nowhere"}, "options.pipeline"),
        ({"pipeline": str(ObjectId()), "create_missing": True}, "options.pipeline"),
        ({"pipeline": ""}, "options.pipeline"),
        ({"create_missing": "yes please"}, "options.create_missing"),
    ],
)
def test_a_deals_import_whose_pipeline_option_cannot_be_used_is_400_naming_it(client, db, tenant, options, field):
    response = upload(client, tenant, b"Deal Name\nA\n", "deals.csv", options, entity="deals")

    assert response.status_code == 400
    details = response.get_json()["error"]["details"]
    assert field in ([d["field"] for d in details] if isinstance(details, list) else [details["field"]])
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0


def test_pipeline_options_are_400_on_a_contacts_import(client, tenant):
    response = upload(client, tenant, b"email\na@example.com\n", options={"pipeline": "Sales"})

    assert response.status_code == 400 and response.get_json()["error"]["details"] == {"field": "options.pipeline"}


def test_a_row_without_a_pipeline_and_no_options_pipeline_fails_naming_both(client, db, worker, tenant):
    job = import_deals(client, db, tenant, b"Deal Name\nA\n")

    error = db["crm.import.errors"].find_one({"job_id": job["_id"]})["error"]
    assert error == "row 2: a deal needs a pipeline (a column, or options.pipeline)"


# ------------------------------------------------------------------ external ids, modes, statuses

IDS = {
    "mapping": {"Deal ID": "external_id", "Deal Name": "name", "Stage": "stage", "Amount": "value", "Status": "status"},
    "pipeline": "Sales",
}


def test_modes_apply_to_deals_matched_by_external_id(client, db, worker, tenant):
    add_pipeline(db, tenant.account_id, "Sales", stages=("Lead", "Won"))
    import_deals(client, db, tenant, b"Deal ID,Deal Name,Stage,Amount,Status\nD1,One,Lead,100,\n", IDS)
    original = by_id(db, tenant.account_id)["D1"]
    content = b"Deal ID,Deal Name,Stage,Amount,Status\nD1,One renamed,Lead,100,\nD2,Two,Lead,5,\n"

    created = import_deals(client, db, tenant, content, {**IDS, "mode": "create"})
    assert created["result"]["counts"] == {"created": 1, "updated": 0, "skipped": 1, "failed": 0}
    assert by_id(db, tenant.account_id)["D1"] == original

    content = b"Deal ID,Deal Name,Stage,Amount,Status\nD1,One renamed,Won,100,\nD3,Three,Lead,5,\n,No id,Lead,1,\n"
    updated = import_deals(client, db, tenant, content, {**IDS, "mode": "update"})
    assert updated["result"]["counts"] == {"created": 0, "updated": 1, "skipped": 2, "failed": 0}
    errors = [e["error"] for e in db["crm.import.errors"].find({"job_id": updated["_id"]}).sort("row", 1)]
    assert errors == ["row 3: no deal with this id to update", "row 4: no deal with this id to update"]
    one = by_id(db, tenant.account_id)["D1"]
    assert one["name"] == "One renamed" and one["stage_id"] != original["stage_id"]
    assert one["stage_entered_at"] > original["stage_entered_at"] and one["created_at"] == original["created_at"]
    assert set(by_id(db, tenant.account_id)) == {"D1", "D2"}


def test_an_upsert_changes_only_what_the_file_changes_and_undo_puts_it_back(client, db, worker, tenant):
    add_pipeline(db, tenant.account_id, "Sales", stages=("Lead", "Won"))
    import_deals(client, db, tenant, b"Deal ID,Deal Name,Stage,Amount,Status\nD1,One,Lead,100,\nD2,Two,Lead,5,\n", IDS)
    db["crm.deals"].update_one(
        {"account_id": tenant.account_id, "external_id": "D2"}, {"$set": {"status": "won", "updated_at": now()}}
    )  # decided in the CRM since
    before = deals(db, tenant.account_id)

    job = import_deals(
        client, db, tenant, b"Deal ID,Deal Name,Stage,Amount,Status\nD1,One,Lead,250,\nD2,Two,Lead,5,\n", IDS
    )

    assert job["result"]["counts"] == {"created": 0, "updated": 2, "skipped": 0, "failed": 0}
    assert job["result"]["unchanged"] == 1
    after = by_id(db, tenant.account_id)
    assert after["D1"]["value"] == {"amount": 250, "currency": "USD"} and after["D1"]["base_value"] == 250
    assert after["D2"] == next(d for d in before if d["external_id"] == "D2")  # no status given: kept "won"
    undo = wait_for_job(db, client.post(f"/v1/crm/jobs/{job['_id']}/undo", headers=tenant.headers()).get_json()["id"])
    assert undo["status"] == "completed" and deals(db, tenant.account_id) == before


def test_rows_repeating_an_external_id_are_one_deal_and_rows_without_one_are_each_a_new_deal(
    client, db, worker, tenant
):
    add_pipeline(db, tenant.account_id, "Sales", stages=("Lead", "Won"))
    content = (
        b"Deal ID,Deal Name,Stage,Amount,Status\nD1,First,Lead,1,\nD1,First again,Won,,\n"
        b",Same name,Lead,1,\n,Same name,Lead,1,\n"
    )

    job = import_deals(client, db, tenant, content, IDS)
    again = import_deals(client, db, tenant, content, IDS)

    assert job["result"]["counts"] == {"created": 3, "updated": 1, "skipped": 0, "failed": 0}
    assert job["result"]["merged_duplicates"] == 1
    names = sorted(d["name"] for d in deals(db, tenant.account_id))
    assert names == ["First again", "Same name", "Same name", "Same name", "Same name"]  # no id: new every time
    assert again["result"]["counts"]["created"] == 2
    one = by_id(db, tenant.account_id)["D1"]
    assert one["value"]["amount"] == 1 and one["status"] == "won"  # stage "Won" ends it


def test_deal_statuses_are_read_as_other_systems_write_them(client, db, worker, tenant):
    add_pipeline(db, tenant.account_id, "Sales", stages=("Lead", "Closed Won", "Closed Lost"))
    content = (
        b"Deal ID,Deal Name,Stage,Amount,Status\n"
        b"1,  Padded  ,Lead,1,Closed Won\n2,B,Lead,1,closed-lost\n3,C,Lead,1,WON\n4,D,Closed Lost,1,\n"
        b"5,E,Closed Won,1,Open\n6,F,Lead,1,maybe\n"
    )

    job = import_deals(client, db, tenant, content, IDS)

    status = {k: d["status"] for k, d in by_id(db, tenant.account_id).items()}
    # `maybe` is left out (a warning): the deal is imported, new and so open.
    assert status == {"1": "won", "2": "lost", "3": "won", "4": "lost", "5": "open", "6": "open"}
    assert by_id(db, tenant.account_id)["1"]["name"] == "Padded"
    error = db["crm.import.errors"].find_one({"job_id": job["_id"]})
    assert error["error"] == "row 7, column 'Status', value 'maybe': status must be open, won or lost"
    assert error["kind"] == "warning" and job["result"]["rows_with_warnings"] == 1


def test_an_external_id_is_kept_with_its_source_and_the_same_id_in_another_account_is_another_deal(
    client, db, worker, tenant, other_tenant
):
    for t in (tenant, other_tenant):
        add_pipeline(db, t.account_id, "Sales", stages=("Lead",))
    import_deals(client, db, other_tenant, b"Deal ID,Deal Name,Stage,Amount,Status\nD1,Theirs,Lead,1,\n", IDS)
    theirs = deals(db, other_tenant.account_id)

    import_deals(client, db, tenant, b"Deal ID,Deal Name,Stage,Amount,Status\nD1,Ours,Lead,1,\n", IDS)

    ours = by_id(db, tenant.account_id)["D1"]
    assert ours["name"] == "Ours" and ours["external_id"] == "D1" and ours["source"] == "import"
    assert deals(db, other_tenant.account_id) == theirs


def test_undoing_a_deals_import_removes_the_pipelines_and_stages_it_created_and_nothing_else(
    client, db, worker, tenant
):
    add_pipeline(db, tenant.account_id, "Sales", stages=("Lead",))
    before = {**structure(db, tenant.account_id), "deals": deals(db, tenant.account_id)}
    content = b"Deal ID,Deal Name,Pipeline,Stage\n1,A,Sales,Demo\n2,B,Renewals,Due\n3,C,Sales,Lead\n"
    job = import_deals(
        client,
        db,
        tenant,
        content,
        {
            "create_missing": True,
            "mapping": {"Deal ID": "external_id", "Deal Name": "name", "Pipeline": "pipeline", "Stage": "stage"},
        },
    )
    assert job["result"]["counts"]["created"] == 3

    undo = wait_for_job(db, client.post(f"/v1/crm/jobs/{job['_id']}/undo", headers=tenant.headers()).get_json()["id"])

    assert undo["status"] == "completed" and undo["result"]["deleted"] == 3
    assert {**structure(db, tenant.account_id), "deals": deals(db, tenant.account_id)} == before
