"""The event store under test: mongomock in process, and a real MongoDB too.

`store` runs each test that asks for it twice: on mongomock, always, and on
the server at MONGO_URL, marked `mongo`, when one answers there. Otherwise
the second run is skipped, and the skip says why (pytest -rs prints it):
no MongoDB server can be installed on this project's CI machine, and a
mongomock result is never a MongoDB result.
"""

import os

import pymongo
import pytest

from analytics import event_store
from tests.dbs import outbox_clear

MOCK_URL = event_store.MOCK_SCHEME


def real_server() -> tuple[str | None, str]:
    """MONGO_URL if a server answers there, else None and why not."""
    url = os.environ.get("MONGO_URL", "")
    if not url or url.startswith(MOCK_URL):
        return None, "MONGO_URL is not set: no real MongoDB to run the suite on"
    try:
        client = pymongo.MongoClient(url, serverSelectionTimeoutMS=1000)
        client.admin.command("ping")
        client.close()
    except pymongo.errors.PyMongoError as exc:
        return None, f"no MongoDB answers at MONGO_URL ({exc.__class__.__name__})"
    return url, ""


@pytest.fixture(params=["mongomock", pytest.param("mongo", marks=pytest.mark.mongo)])
def store(request, settings):
    """A fresh event database with its collections, on either store."""
    if request.param == "mongo":
        url, reason = real_server()
        if url is None:
            pytest.skip(f"real-MongoDB suite skipped: {reason}")
    else:
        url = MOCK_URL
    settings.MONGO_URL = url
    settings.MONGO_DB = "test_" + os.environ.get("SHOP_TEST_DB_NAME", "shop_events")
    event_store.forget_clients()
    client = event_store.client()
    client.drop_database(settings.MONGO_DB)
    db = event_store.database()
    event_store.ensure_collections(db)
    yield db
    client.drop_database(settings.MONGO_DB)
    event_store.forget_clients()


@pytest.fixture(autouse=True)
def empty_outbox(transactional_db):
    """Every test here reads "all pending events": start from none."""
    outbox_clear()
