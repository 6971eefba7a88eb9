from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_customer_tax_id_encrypted"),
        ("shop", "0002_audit_log"),
        ("shop", "0003_shared_functions"),
        # API tokens are part of logging in: their audit triggers live here.
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [
        sql_file("shop/accounts/sql/triggers/audit_v01.sql"),
        sql_file("shop/accounts/sql/rls/row_level_security_v01.sql"),
        sql_file("shop/accounts/sql/audit/pgaudit_object_grants_v01.sql"),
    ]
