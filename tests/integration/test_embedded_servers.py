"""The embedded servers of `crm-jobs dev` and the tests: a server is used only once it proves it is the process we
started, whatever else listens on the port it was given."""

from __future__ import annotations

import socket

import pytest
import redis
from pymongo import MongoClient

import crm_jobs.servers as servers
from crm_jobs.servers import EmbeddedMongo, EmbeddedValkey
from tests.e2e.process_tree import port_is_free

pytestmark = pytest.mark.slow


@pytest.fixture
def started():
    running = []
    yield lambda server: running.append(server) or server
    for server in running:
        server.stop()


def test_secantus_binds_a_port_of_its_own_choosing_and_answers_as_our_process(started):
    mongo = started(EmbeddedMongo())

    uri = mongo.start()

    assert uri == f"mongodb://127.0.0.1:{mongo.port}/?directConnection=true"
    client = MongoClient(uri, serverSelectionTimeoutMS=5000)
    assert client.admin.command("serverStatus")["pid"] == mongo.pid
    client.close()
    mongo.stop()
    assert port_is_free(mongo.port)


def test_a_valkey_whose_port_is_taken_meanwhile_starts_on_another_and_never_talks_to_the_stranger(started, monkeypatch):
    stranger = started(EmbeddedValkey())
    redis.Redis.from_url(stranger.start()).set("owner", "stranger")
    plain_listener = socket.socket()
    plain_listener.bind(("127.0.0.1", 0))
    plain_listener.listen()
    busy_port = plain_listener.getsockname()[1]
    # The race, made certain: the first "free" ports handed out are taken by the time the server binds them.
    taken = iter([stranger.port, busy_port])
    real_free_port = servers.free_port
    monkeypatch.setattr(servers, "free_port", lambda: next(taken, None) or real_free_port())

    valkey = started(EmbeddedValkey())
    url = valkey.start()

    plain_listener.close()
    assert valkey.port not in (stranger.port, busy_port)
    client = redis.Redis.from_url(url)
    assert client.info("server")["process_id"] == valkey.pid
    assert client.get("owner") is None
    assert redis.Redis.from_url(stranger.url).get("owner") == b"stranger"


def test_a_restarted_valkey_keeps_its_url_but_refuses_a_stranger_that_took_its_port(started):
    valkey = started(EmbeddedValkey())
    url = valkey.start()
    valkey.stop()
    stranger = started(EmbeddedValkey(port=valkey.port))
    stranger.start()

    with pytest.raises(RuntimeError, match="exited with code"):
        valkey.start()

    stranger.stop()
    assert valkey.start() == url
    assert redis.Redis.from_url(url).info("server")["process_id"] == valkey.pid


def test_a_restarted_secantus_keeps_its_uri_and_its_data_but_refuses_a_stranger_that_took_its_port(started, tmp_path):
    mongo = started(EmbeddedMongo(tmp_path / "data"))
    uri = mongo.start()
    MongoClient(uri).crm.kept.insert_one({"_id": 1})
    mongo.stop()
    stranger = started(EmbeddedMongo(port=mongo.port))
    stranger.start()

    with pytest.raises(RuntimeError, match="Address already in use"):
        mongo.start()

    stranger.stop()
    assert mongo.start() == uri
    client = MongoClient(uri, serverSelectionTimeoutMS=5000)
    assert client.admin.command("serverStatus")["pid"] == mongo.pid
    assert client.crm.kept.find_one({"_id": 1}) == {"_id": 1}
