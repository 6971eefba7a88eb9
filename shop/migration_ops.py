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
        with schema_editor.connection.cursor() as cursor:
            constraints = schema_editor.connection.introspection.get_constraints(
                cursor, table
            )
        names = [
            name
            for name, info in constraints.items()
            if info["foreign_key"] and info["columns"] == [field.column]
        ]
        if len(names) != 1:
            raise RuntimeError(
                f"expected one foreign key on {table}.{field.column}, found {names}"
            )
        name = names[0]
        schema_editor.execute(
            f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}, "
            f"ADD CONSTRAINT {quote(name)} FOREIGN KEY ({quote(field.column)}) "
            f"REFERENCES {quote(target.model._meta.db_table)} ({quote(target.column)}) "
            f"ON DELETE {action} DEFERRABLE INITIALLY DEFERRED"
        )
