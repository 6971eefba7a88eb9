from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0004_named_unique_and_slug_constraints"),
        ("shop", "0003_shared_functions"),
    ]

    operations = [
        sql_file("catalog/sql/triggers/touch_updated_at_v01.sql"),
        sql_file("catalog/sql/rls/row_level_security_v01.sql"),
    ]
