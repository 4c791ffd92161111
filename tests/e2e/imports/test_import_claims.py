"""Claims on the real database: a retried chunk takes its own claims back, a claim left by a dead worker is
written into (never around), an expired one is taken over, and claims never outlive a chunk that ends; an
import alone takes none, and one that starts beside it waits until the running one has written its chunk."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from bson import ObjectId
from pymongo.errors import BulkWriteError

from crm_workers import jobs
from crm_workers.domain.ids import stable_id
from crm_workers.domain.import_columns import parse_row
from crm_workers.domain.import_rows import RowContext
from crm_workers.domain.principal import Principal
from crm_workers.jobs import now
from crm_workers.services.imports.claims import Claims
from crm_workers.services.imports.importers import Importers
from crm_workers.services.imports.lookups import Lookups
from crm_workers.services.imports.matching import group_rows, settle
from crm_workers.services.imports.writer import ChunkOutcome, ImportRun, contact_keys, write_contacts
from tests.conftest import wait_for

PEOPLE = 30


@pytest.fixture
def account_id(db):
    account_id = ObjectId()
    db["_accounts"].insert_one({"_id": account_id, "name": "claims", "preferences": {"crm_visibility": "everyone"}})
    return account_id


def running_import(db, account_id) -> ObjectId:
    job, _ = jobs.create_job(db, account_id, "contacts.import", {"entity": "contact", "source": {}})
    return jobs.claim(db, job["_id"], stale_seconds=3600)["_id"]


@pytest.fixture
def neighbour(db, account_id):
    """Another import of the account running meanwhile: every chunk of these tests claims."""
    importers = Importers(db, account_id, running_import(db, account_id), now)
    importers.join()
    yield importers
    importers.leave()


def make_run(db, account_id, job_id=None) -> ImportRun:
    job_id = job_id or running_import(db, account_id)
    claims = Claims(db, account_id, job_id, now)
    return ImportRun(
        db=db,
        account_id=account_id,
        job_id=job_id,
        principal=Principal(account_id, ObjectId(), True, False),
        dedupe="email",
        mode="upsert",
        owner=None,
        base_currency="USD",
        default_currency="USD",
        lookups=Lookups(db, account_id, job_id, now, claims=claims),
        claims=claims,
        importers=Importers(db, account_id, job_id, now),
        now=now,
    )


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
    return list(db["crm.import.claims"].find({"account_id": account_id, "job_id": {"$exists": True}}))


def test_a_retried_chunk_takes_its_own_claims_back_and_writes_each_person_once(db, account_id, neighbour):
    run = make_run(db, account_id)
    dies_after_claiming(run)
    assert len(claims(db, account_id)) == PEOPLE and not people(db, account_id)

    out = write_contacts(make_run(db, account_id, run.job_id), rows())

    assert (out.created, out.updated) == (PEOPLE, 0)
    assert sorted(p["_id"] for p in people(db, account_id)) == sorted(
        stable_id(run.job_id, "row", i + 2) for i in range(PEOPLE)
    )
    assert claims(db, account_id) == []


def test_a_claim_left_by_a_dead_worker_is_written_into_and_counted_once_when_that_job_resumes(
    db, account_id, neighbour
):
    dead = make_run(db, account_id)
    dies_after_claiming(dead)

    other = write_contacts(make_run(db, account_id), rows())
    resumed = write_contacts(make_run(db, account_id, dead.job_id), rows())

    assert len(people(db, account_id)) == PEOPLE
    assert {p["_id"] for p in people(db, account_id)} == {stable_id(dead.job_id, "row", i + 2) for i in range(PEOPLE)}
    assert (other.created, other.updated) == (PEOPLE, 0)
    assert (resumed.created, resumed.updated, resumed.unchanged) == (0, PEOPLE, PEOPLE)
    assert claims(db, account_id) == []


def test_an_expired_claim_is_taken_over(db, account_id, neighbour):
    stale = ObjectId()
    db["crm.import.claims"].insert_one(
        {
            "account_id": account_id,
            "kind": "email",
            "key": "p0@example.com",
            "record_id": stale,
            "owner": None,
            "job_id": ObjectId(),
            "expires_at": now() - timedelta(seconds=1),
        }
    )
    run = make_run(db, account_id)

    out = write_contacts(run, rows())

    assert out.created == PEOPLE and db["crm.contacts"].find_one({"_id": stale}) is None
    assert claims(db, account_id) == []


def test_claims_are_released_when_a_chunk_fails_half_way(db, account_id, neighbour):
    bad = rows()
    bad[-1].record["custom_fields"] = {"notes": "x" * (17 << 20)}  # over 16 MB: refused after the claims were taken

    with pytest.raises(BulkWriteError):
        write_contacts(make_run(db, account_id), bad)

    assert claims(db, account_id) == []


def test_an_import_alone_takes_no_claims(db, account_id):
    run = make_run(db, account_id)
    seen = []
    take = run.claims.take
    run.claims.take = lambda wanted: seen.append(run.claims.needed) or take(wanted)

    out = write_contacts(run, rows())

    assert out.created == PEOPLE and seen and not any(seen)
    assert claims(db, account_id) == []


def test_an_import_starting_beside_another_waits_until_that_one_has_written_its_chunk(db, account_id):
    running = Importers(db, account_id, running_import(db, account_id), now)
    running.join()
    assert running.alone()  # deciding a chunk without claims, and writing it
    newcomer = Importers(db, account_id, running_import(db, account_id), now)
    joining = threading.Thread(target=newcomer.join)
    joining.start()
    epoch = {"account_id": account_id, "kind": "epoch"}
    wait_for(lambda: db["crm.import.claims"].find_one(epoch)["n"] == 2, what="the newcomer to take its epoch")

    assert joining.is_alive()  # the running import has not promised it finished its chunk: nothing decided
    running.ack()
    joining.join(timeout=20)

    assert not joining.is_alive()
    assert not running.alone() and not newcomer.alone()  # both claim from now on
    newcomer.leave()
    assert running.alone()
    running.leave()
    assert db["crm.import.claims"].count_documents({"account_id": account_id, "kind": "importer"}) == 0
