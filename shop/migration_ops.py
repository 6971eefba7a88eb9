"""Migration operations Django lacks.

Django 5.2 emulates `on_delete` in Python and creates every foreign key as
plain NO ACTION in the database, so a raw `DELETE` (psql, a report script, a
trigger) would not cascade and a PROTECT would only be enforced at commit.
`ForeignKeyOnDelete` re-declares the constraint with the ON DELETE rule that
matches the model, so the database holds the rule itself. A test compares
every foreign key's `confdeltype` with its model's `on_delete`.
"""

from django.db.migrations.operations.base import Operation

ACTIONS = {"CASCADE", "RESTRICT", "SET NULL", "NO ACTION"}


class ForeignKeyOnDelete(Operation):
    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name, field_name, on_delete):
        if on_delete not in ACTIONS:
            raise ValueError(f"on_delete must be one of {sorted(ACTIONS)}")
        self.model_name = model_name
        self.field_name = field_name
        self.on_delete = on_delete

    def deconstruct(self):
        return (
            self.__class__.__qualname__,
            [],
            {
                "model_name": self.model_name,
                "field_name": self.field_name,
                "on_delete": self.on_delete,
            },
        )

    def state_forwards(self, app_label, state):
        """The model state is unchanged: only the database constraint differs."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._redeclare(app_label, schema_editor, to_state, self.on_delete)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._redeclare(app_label, schema_editor, to_state, "NO ACTION")

    def describe(self):
        return f"Set ON DELETE {self.on_delete} on {self.model_name}.{self.field_name}"

    @property
    def migration_name_fragment(self):
        return f"{self.model_name}_{self.field_name}_on_delete"

    def _redeclare(self, app_label, schema_editor, state, action):
        model = state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        field = model._meta.get_field(self.field_name)
        table = model._meta.db_table
        target = field.target_field
        quote = schema_editor.quote_name
        # The name Django gave the key (computed, not looked up), so that
        # `sqlmigrate` prints what a fresh `migrate` runs, whatever the state
        # of the database it is run against.
        name = _django_fk_name(schema_editor, model, field)
        schema_editor.execute(
            f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}, "
            f"ADD CONSTRAINT {quote(name)} FOREIGN KEY ({quote(field.column)}) "
            f"REFERENCES {quote(target.model._meta.db_table)} ({quote(target.column)}) "
            f"ON DELETE {action} DEFERRABLE INITIALLY DEFERRED"
        )


def foreign_key_name(table: str, column: str) -> str:
    """The readable name the shop gives a foreign key: <table>_<column>_fk."""
    return f"{table}_{column}_fk"


class NameForeignKey(Operation):
    """Rename a foreign key from Django's hashed name to <table>_<column>_fk.

    Django names foreign keys like `catalog_stock_level_variant_id_b22eddfc_fk_...`;
    an error message or a lab that says `catalog_stock_level_variant_id_fk`
    tells a reader what broke. Django finds foreign keys by column, not by
    name, when it later alters or drops one, so the rename is safe.
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name, field_name):
        self.model_name = model_name
        self.field_name = field_name

    def deconstruct(self):
        kwargs = {"model_name": self.model_name, "field_name": self.field_name}
        return (self.__class__.__qualname__, [], kwargs)

    def state_forwards(self, app_label, state):
        """The model state is unchanged: only the constraint's name differs."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._rename(app_label, schema_editor, to_state, readable=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._rename(app_label, schema_editor, to_state, readable=False)

    def describe(self):
        return f"Name the foreign key of {self.model_name}.{self.field_name}"

    def _rename(self, app_label, schema_editor, state, *, readable):
        model = state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        field = model._meta.get_field(self.field_name)
        table = model._meta.db_table
        current = _foreign_key_constraint(schema_editor, table, field.column)
        if readable:
            new = foreign_key_name(table, field.column)
        else:
            new = _django_fk_name(schema_editor, model, field)
        quote = schema_editor.quote_name
        schema_editor.execute(
            f"ALTER TABLE {quote(table)} "
            f"RENAME CONSTRAINT {quote(current)} TO {quote(new)}"
        )


def _foreign_key_constraint(schema_editor, table, column):
    with schema_editor.connection.cursor() as cursor:
        constraints = schema_editor.connection.introspection.get_constraints(
            cursor, table
        )
    names = [
        name
        for name, info in constraints.items()
        if info["foreign_key"] and info["columns"] == [column]
    ]
    if len(names) != 1:
        raise RuntimeError(
            f"expected one foreign key on {table}.{column}, found {names}"
        )
    return names[0]


def _django_fk_name(schema_editor, model, field) -> str:
    """The name Django's schema editor gives this field's foreign key."""
    suffix = "_fk_%(to_table)s_%(to_column)s"
    name = schema_editor._fk_constraint_name(model, field, suffix)
    # A statement part that may render already quoted; callers quote it.
    return str(name).strip('"')
