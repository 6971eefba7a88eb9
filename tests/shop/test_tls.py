"""TLS to the local services: every connection encrypted, plaintext refused.

scripts/services.sh makes a CA under var/pg/tls/, serves a certificate it
signed, and accepts TCP logins only with `hostssl` lines in pg_hba.conf; the
settings verify the certificate and its name (sslmode=verify-full).
"""

import psycopg
import pytest
from django.conf import settings
from django.db import connections

ALIASES = ["default", "owner", "replica", "readonly"]

pytestmark = pytest.mark.django_db(databases=ALIASES)


@pytest.mark.parametrize("alias", ALIASES)
def test_every_alias_verifies_the_servers_certificate(alias):
    params = connections[alias].get_connection_params()
    assert params["sslmode"] == "verify-full", (
        f"{alias} connects with sslmode={params['sslmode']}: run "
        "`bash scripts/services.sh up` to create var/pg/tls/ca.crt, or set "
        "DB_SSLMODE=verify-full and DB_SSLROOTCERT"
    )
    assert params["sslrootcert"] == settings.DB_SSLROOTCERT


@pytest.mark.parametrize("alias", ALIASES)
def test_every_alias_is_encrypted(alias):
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        )
        ssl, version = cursor.fetchone()
    assert ssl is True
    assert version.startswith("TLSv1.")


@pytest.mark.parametrize("alias", ["owner", "replica"])
def test_a_plaintext_connection_is_refused(alias):
    params = connections[alias].get_connection_params()
    params["sslmode"] = "disable"
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(**params).close()
    message = str(refused.value)
    assert "no pg_hba.conf entry" in message
    assert "no encryption" in message or "SSL off" in message
