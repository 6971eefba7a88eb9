"""Orders: carts, checkout and the outbox arrive with the checkout issue."""
