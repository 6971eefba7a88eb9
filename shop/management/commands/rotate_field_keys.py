"""python manage.py rotate_field_keys [--batch-size N]: move data to the current key.

Rotating the key of the columns encrypted at rest (shop/crypto.py):

1. Add the new key FIRST in FIELD_ENCRYPTION_KEYS and keep the old one after
   it, e.g. `2:new-secret,1:old-secret`. Deploy, so that every process
   writes with key 2 and can still read rows on key 1.
2. Run this command. It moves every row still on an older key to the
   current one, batch by batch, each batch one short transaction, and is
   safe to interrupt and run again. It reports the keys still in use at the
   end: nothing left means done.
3. Remove the old key from FIELD_ENCRYPTION_KEYS (`2:new-secret`) and deploy.
   A row still on a removed key cannot be read until the key is put back.

Decryption and re-encryption happen in one UPDATE on the server, so the
plaintext never reaches this process. Ciphertext already copied elsewhere
(backups, shop_audit_log's old rows, the WAL archive) stays under the old
key: destroy the old key only once those have expired.
"""

from django.core.management.base import BaseCommand, CommandError

from shop.accounts.services import (
    customer_tax_ids_on_old_keys,
    customer_tax_ids_reencrypt_batch,
)
from shop.crypto import current_key_id


class Command(BaseCommand):
    help = (
        "Re-encrypt customers' tax ids still under an older key with the current "
        "(first) key of FIELD_ENCRYPTION_KEYS, in batches of short transactions."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="rows per transaction (default: 500)",
        )

    def handle(self, *args, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        new_key_id = current_key_id()
        for old_key_id in customer_tax_ids_on_old_keys():
            total = 0
            while moved := customer_tax_ids_reencrypt_batch(
                old_key_id=old_key_id, batch_size=batch_size
            ):
                total += moved
            self.stdout.write(f"key {old_key_id} -> {new_key_id}: {total} tax ids")
        left = customer_tax_ids_on_old_keys()
        if left:
            # Rows locked by a customer's own update are skipped, not waited for.
            raise CommandError(
                f"Tax ids remain under keys {left} (rows locked meanwhile); "
                "run the command again."
            )
        self.stdout.write(f"every tax id is under key {new_key_id}")
