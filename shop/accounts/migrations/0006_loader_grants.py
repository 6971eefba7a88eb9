from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_audit_and_row_level_security"),
        # The schema's USAGE, which these grants are useless without.
        ("shop", "0004_loader_schema_usage"),
    ]

    operations = [sql_file("shop/accounts/sql/grants/loader_v01.sql")]
