from django.db import migrations

from shop.migration_ops import ForeignKeyOnDelete


class Migration(migrations.Migration):
    """Declare each foreign key's ON DELETE in the database (shop/migration_ops.py)."""

    dependencies = [("accounts", "0001_users_customers_addresses")]

    operations = [
        ForeignKeyOnDelete("customer", "user", "CASCADE"),
        ForeignKeyOnDelete("address", "customer", "CASCADE"),
    ]
