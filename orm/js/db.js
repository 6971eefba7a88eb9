// The connection settings both scripts use, from the same environment
// variables as the shop (shop/settings/base.py): DATABASE_URL, and
// DB_SSLROOTCERT / DB_SSLMODE for TLS. The shop's own servers accept only
// TLS connections from clients that verify them against the local CA
// (var/pg/tls/ca.crt, made by scripts/services.sh).
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..", "..");
const DEFAULT_URL = "postgres://shop_app:shop_app@127.0.0.1:55432/shop";
const LOCAL_CA = path.join(ROOT, "var", "pg", "tls", "ca.crt");

function tls() {
  const rootCert =
    process.env.DB_SSLROOTCERT ?? (fs.existsSync(LOCAL_CA) ? LOCAL_CA : "");
  const mode = process.env.DB_SSLMODE ?? (rootCert ? "verify-full" : "prefer");
  if (mode === "disable" || !rootCert) {
    return false;
  }
  // verify-full: the server's certificate must chain to the CA and name
  // the host that was dialled, as libpq checks it for the Python side.
  return { ca: fs.readFileSync(rootCert, "utf8"), rejectUnauthorized: true };
}

/** node-postgres settings (a pg.PoolConfig) for DATABASE_URL. */
function connectionConfig() {
  const url = new URL(process.env.DATABASE_URL ?? DEFAULT_URL);
  return {
    host: url.hostname,
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.slice(1)),
    ssl: tls(),
    // Small and bounded, like the shop's own pools: a script that
    // cannot connect says so within seconds.
    max: 2,
    connectionTimeoutMillis: 5000,
  };
}

/** How many products a page holds (the API's default page size). */
function pageSize() {
  return Number(process.env.PAGE_SIZE ?? 20);
}

/** Print the page as a table, and write it as JSON to ROWS_JSON if set. */
function report(rows) {
  console.log(`== ${rows.length} product(s)`);
  for (const row of rows) {
    console.log(
      `   ${row.id}  ${row.slug}  ${row.category_slug}  ${row.min_price}  available ${row.available}`,
    );
  }
  if (process.env.ROWS_JSON) {
    fs.writeFileSync(process.env.ROWS_JSON, JSON.stringify(rows));
  }
}

module.exports = { connectionConfig, pageSize, report };
