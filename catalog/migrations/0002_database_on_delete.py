from django.db import migrations

from shop.migration_ops import ForeignKeyOnDelete


class Migration(migrations.Migration):
    """Declare each foreign key's ON DELETE in the database (shop/migration_ops.py)."""

    dependencies = [("catalog", "0001_catalog_schema")]

    operations = [
        ForeignKeyOnDelete("category", "parent", "RESTRICT"),
        ForeignKeyOnDelete("product", "category", "RESTRICT"),
        ForeignKeyOnDelete("productvariant", "product", "CASCADE"),
        ForeignKeyOnDelete("stocklevel", "variant", "CASCADE"),
        ForeignKeyOnDelete("stocklevel", "warehouse", "RESTRICT"),
        ForeignKeyOnDelete("review", "product", "CASCADE"),
        ForeignKeyOnDelete("review", "customer", "CASCADE"),
    ]
