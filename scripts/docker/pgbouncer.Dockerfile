# The image of the pgbouncer service in docker-compose.yml: Debian bookworm's
# pgbouncer (1.18), the one scripts/services.sh runs on the machines the
# course targets, so that both set-ups pool alike (1.21 and later can also
# keep prepared statements: chapter 16). Its settings come from
# pgbouncer-entrypoint.sh, mounted at run time as the primary's and the
# replica's scripts are.
FROM debian:bookworm-slim

# psql for the healthcheck and for pgbouncer's admin console. The package's
# dependencies create the postgres user, which owns the settings directory.
# policy-rc.d keeps the package from starting Debian's own pgbouncer service
# during the build.
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d \
    && chmod +x /usr/sbin/policy-rc.d \
    && apt-get update \
    && apt-get install -y --no-install-recommends pgbouncer postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o postgres -g postgres -m 700 /var/lib/shop-pgbouncer

# pgbouncer refuses to run as root.
USER postgres
EXPOSE 6432
