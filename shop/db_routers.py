"""Database routing: which alias may run migrations.

Only `owner` (shop_owner) migrates: the app's role, shop_app, has DML rights
only and could not create a table if it tried. Reads and writes go to
`default` unless a selector explicitly asks for `replica` (chapter 18).
"""


class OwnerMigratesRouter:
    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "owner"
