from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0005_named_and_status_constraints"),
        ("shop", "0002_audit_log"),
        ("shop", "0003_shared_functions"),
    ]

    operations = [
        sql_file("orders/sql/triggers/audit_v01.sql"),
        sql_file("orders/sql/rls/row_level_security_v01.sql"),
        sql_file("orders/sql/audit/pgaudit_object_grants_v01.sql"),
    ]
