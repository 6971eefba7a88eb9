from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    # After every customer-owned table exists; the policies name them all.
    dependencies = [
        ("shop", "0002_audit_log"),
        ("accounts", "0004_customer_tax_id_encrypted"),
        ("catalog", "0004_named_unique_and_slug_constraints"),
        ("orders", "0005_named_and_status_constraints"),
    ]

    operations = [
        # The seed's loader first: once the policies are on, COPY works only
        # for a role that bypasses them.
        sql_file("shop/sql/grants_loader_v01.sql"),
        sql_file("shop/sql/rls/row_level_security_v01.sql"),
    ]
