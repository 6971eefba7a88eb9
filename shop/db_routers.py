"""Database routing: where reads go, where writes go, which alias migrates.

Reads go where shop/replica.py's read_alias() says: the replica for a
request that may read slightly stale data (an anonymous catalog read,
decided by shop/middleware.py), the primary otherwise (chapter 18). Writes
never go to a standby. Only `owner` (shop_owner) migrates: the app's role,
shop_app, has DML rights only and could not create a table if it tried.
"""

from shop.replica import PRIMARY, STANDBYS, read_alias

# Every alias reaches the same database, as one role or another, on the
# primary or on its streaming copy: rows read through one may be related to
# rows read through another.
SAME_DATABASE = {PRIMARY, "owner", "loader", *STANDBYS}


class ReadReplicaRouter:
    def db_for_read(self, model, **hints):
        return read_alias()

    def db_for_write(self, model, **hints):
        # Django would save an instance where it was read from: a row read on
        # the replica is written back through the primary, the only writer.
        instance = hints.get("instance")
        if instance is not None and instance._state.db in STANDBYS:
            return PRIMARY
        return None

    def allow_relation(self, obj1, obj2, **hints):
        if {obj1._state.db, obj2._state.db} <= SAME_DATABASE:
            return True
        return None


class OwnerMigratesRouter:
    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "owner"
