"""Claims on the real database: a retried chunk takes its own claims back, a claim left by a dead worker is
written into (never around), an expired one is taken over, and claims never outlive a chunk that ends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bson import ObjectId
from pymongo.errors import BulkWriteError

from crm_workers.domain.ids import stable_id
from crm_workers.domain.import_rows import RowContext, parse_row
from crm_workers.domain.principal import Principal
from crm_workers.jobs import now
from crm_workers.services.imports.claims import Claims
from crm_workers.services.imports.lookups import Lookups
from crm_workers.services.imports.matching import group_rows, settle
from crm_workers.services.imports.writer import ChunkOutcome, ImportRun, contact_keys, write_contacts

PEOPLE = 30


@pytest.fixture
def account_id(db):
    account_id = ObjectId()
    db["_accounts"].insert_one({"_id": account_id, "name": "claims", "preferences": {"crm_visibility": "everyone"}})
    return account_id


def make_run(db, account_id, job_id=None) -> ImportRun:
    job_id = job_id or ObjectId()
    claims = Claims(db, account_id, job_id, now)
    return ImportRun(db=db, account_id=account_id, job_id=job_id, principal=Principal(account_id, ObjectId(), True,
                                                                                         False),
                     dedupe="email", mode="upsert", owner=None, base_currency="USD", default_currency="USD",
                     lookups=Lookups(db, account_id, job_id, now, claims=claims), claims=claims, now=now)


def rows():
    ctx = RowContext(entity="contact", mapping={"email": "email", "name": "first_name"}, fields={}, country=None)
    return [parse_row(ctx, i + 2, ["email", "name"], [f"p{i}@example.com", f"P{i}"]) for i in range(PEOPLE)]


def dies_after_claiming(run: ImportRun) -> None:
    """A chunk that claimed its keys, then its worker died before writing (and before releasing)."""
    out = ChunkOutcome()
    settle(run, group_rows(rows(), lambda r: contact_keys(run, r), run.job_id, out), "crm.contacts", "contact", out)


def people(db, account_id) -> list[dict]:
    return list(db["crm.contacts"].find({"account_id": account_id}))


def claims(db, account_id) -> list[dict]:
    return list(db["crm.import.claims"].find({"account_id": account_id}))


def test_a_retried_chunk_takes_its_own_claims_back_and_writes_each_person_once(db, account_id):
    run = make_run(db, account_id)
    dies_after_claiming(run)
    assert len(claims(db, account_id)) == PEOPLE and not people(db, account_id)

    out = write_contacts(make_run(db, account_id, run.job_id), rows())

    assert (out.created, out.updated) == (PEOPLE, 0)
    assert sorted(p["_id"] for p in people(db, account_id)) == sorted(
        stable_id(run.job_id, "row", i + 2) for i in range(PEOPLE))
    assert claims(db, account_id) == []


def test_a_claim_left_by_a_dead_worker_is_written_into_and_counted_once_when_that_job_resumes(db, account_id):
    dead = make_run(db, account_id)
    dies_after_claiming(dead)

    other = write_contacts(make_run(db, account_id), rows())
    resumed = write_contacts(make_run(db, account_id, dead.job_id), rows())

    assert len(people(db, account_id)) == PEOPLE
    assert {p["_id"] for p in people(db, account_id)} == {stable_id(dead.job_id, "row", i + 2) for i in range(PEOPLE)}
    assert (other.created, other.updated) == (PEOPLE, 0)
    assert (resumed.created, resumed.updated, resumed.unchanged) == (0, PEOPLE, PEOPLE)
    assert claims(db, account_id) == []


def test_an_expired_claim_is_taken_over(db, account_id):
    stale = ObjectId()
    db["crm.import.claims"].insert_one({"account_id": account_id, "kind": "email", "key": "p0@example.com",
                                        "record_id": stale, "owner": None, "job_id": ObjectId(),
                                        "expires_at": now() - timedelta(seconds=1)})
    run = make_run(db, account_id)

    out = write_contacts(run, rows())

    assert out.created == PEOPLE and db["crm.contacts"].find_one({"_id": stale}) is None
    assert claims(db, account_id) == []


def test_claims_are_released_when_a_chunk_fails_half_way(db, account_id):
    bad = rows()
    bad[-1].record["custom_fields"] = {"": "x"}  # a path the database refuses, after the claims were taken

    with pytest.raises(BulkWriteError):
        write_contacts(make_run(db, account_id), bad)

    assert claims(db, account_id) == []
