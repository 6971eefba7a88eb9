from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from orders import selectors, services
from orders.api.serializers import (
    CartItemAddInput,
    CartItemOutput,
    CartItemUpdateInput,
    CartOutput,
    CheckoutInput,
    CheckoutOutput,
    OrderOutput,
)
from orders.services.idempotency import KEY_FORMAT
from shop.db_context import customer_transaction
from shop.errors import (
    ApplicationError,
    InvalidRequest,
    NotFound,
    error_status_and_body,
    success_status,
)
from shop.openapi import error_response
from shop.pagination import SafeCursorPagination

INSUFFICIENT_STOCK = error_response(
    "`insufficient_stock`: fewer units are available than asked for "
    "(`available`, `skus`)."
)


class IsCustomer(BasePermission):
    """Logged in and with a customer profile (staff accounts may have none)."""

    message = "Only customers have a cart and orders; log in as a customer."
    # Who gets through, for the schema's x-audience (shop/openapi.py).
    audience = "customer"

    def has_permission(self, request, view):
        return bool(
            request.user
            and request.user.is_authenticated
            and hasattr(request.user, "customer")
        )


def customer_id(request) -> int:
    return request.user.customer.pk


class CartApi(APIView):
    permission_classes = [IsCustomer]

    @extend_schema(responses={200: CartOutput})
    def get(self, request):
        return Response(
            CartOutput(selectors.cart_get(customer_id=customer_id(request))).data
        )


class CartItemAddApi(APIView):
    permission_classes = [IsCustomer]

    @extend_schema(
        request=CartItemAddInput,
        responses={201: CartItemOutput, 409: INSUFFICIENT_STOCK},
    )
    def post(self, request):
        data = CartItemAddInput(data=request.data)
        data.is_valid(raise_exception=True)
        item = services.cart_item_add(
            customer_id=customer_id(request), **data.validated_data
        )
        return Response(_item_body(item), status=status.HTTP_201_CREATED)


class CartItemApi(APIView):
    permission_classes = [IsCustomer]

    @extend_schema(
        request=CartItemUpdateInput,
        responses={200: CartItemOutput, 409: INSUFFICIENT_STOCK},
    )
    def patch(self, request, item_id):
        data = CartItemUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        item = services.cart_item_update(
            customer_id=customer_id(request), item_id=item_id, **data.validated_data
        )
        return Response(_item_body(item))

    @extend_schema(responses={204: None})
    def delete(self, request, item_id):
        services.cart_item_remove(customer_id=customer_id(request), item_id=item_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _item_body(item):
    price = item.variant.price
    return CartItemOutput(
        {
            "id": item.pk,
            "sku": item.variant.sku,
            "quantity": item.quantity,
            "unit_price": price,
            "line_total": price * item.quantity,
        }
    ).data


CHECKOUT_DESCRIPTION = """Place an order from the cart and pay for it, once per key.

Send an `Idempotency-Key` header. The same key with the same body gets the
first answer again and never charges twice; the same key with another body
is a 422. Completed keys are kept for 24 hours
(`IDEMPOTENCY_KEY_RETENTION`): a replay after that is a new checkout like
any other, so if the first one succeeded the cart is empty by then and the
answer is 400 `cart_empty`.

A payment gateway that does not answer (an error, a timeout) leaves the
outcome unknown: 503 `payment_pending` with the `order_id`. The order stays
pending with its items reserved until the shop's recovery has asked the
gateway by the order's reference: it runs every 5 minutes on the Celery beat
schedule (or at once: `python manage.py checkout_recover`), and asks about a
checkout once it is a minute old. If the card was charged, the order
becomes paid and the same key then answers 201; if not, the order fails,
its items are released and the same key starts a new checkout. Meanwhile
the same key replays the 503, a new key gets 409 `checkout_in_progress`,
and `GET /api/v1/orders/{order_id}/` shows the order's status. A charge that
reaches the gateway after its checkout was released is refunded
(409 `checkout_expired`)."""

# Recovery asks about a checkout at its first run (every 5 minutes) once the
# checkout is a minute old (orders/services/orders.py:
# CAPTURED_UNSETTLED_AFTER): polling once a minute sees the outcome within a
# minute of it, without a retry per second until then.
PAYMENT_PENDING_RETRY_AFTER = "60"


class CheckoutApi(APIView):
    permission_classes = [IsCustomer]

    @extend_schema(
        request=CheckoutInput,
        description=CHECKOUT_DESCRIPTION,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                required=True,
                pattern=f"^{KEY_FORMAT.pattern}$",
                description="Any unique value per checkout, e.g. a UUID; a "
                "retry with the same key and body within 24 hours gets the "
                "first response.",
            )
        ],
        responses={
            201: CheckoutOutput,
            400: error_response(
                "`cart_empty` (also what a replay gets after its key expired, "
                "if the first checkout emptied the cart), "
                "`idempotency_key_missing`, `invalid_idempotency_key`, "
                "`amount_too_large`, or `invalid` with `errors` by field."
            ),
            402: error_response(
                "`payment_declined`: the reserved stock was released; "
                "`order_id` names the failed order."
            ),
            409: error_response(
                "`insufficient_stock` (short SKUs in `skus`), `unavailable` (off "
                "sale, in `skus`), `checkout_in_progress` (another checkout of "
                "this cart is being paid for, or its payment is pending), "
                "`checkout_expired` (the checkout was released while the gateway "
                "answered; a charge it made is refunded; `order_id`), or "
                "`idempotency_key_in_use` (with Retry-After)."
            ),
            422: error_response(
                "`idempotency_key_reused`: this key came with another body; use "
                "a new key for a new checkout."
            ),
            503: error_response(
                "`payment_pending`: the payment gateway did not answer, so "
                "whether the card was charged is not known yet; the order "
                "(`order_id`) stays pending until the shop has asked the "
                "gateway. Retry with the same key after `Retry-After` seconds: "
                "the answer is this one until the outcome is settled, then 201 "
                "(charged) or a new checkout (not charged). Never a second "
                "charge. Or `busy` / `database_unavailable`: retry after "
                "`Retry-After` seconds."
            ),
        },
    )
    def post(self, request):
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            raise InvalidRequest(
                "Send an Idempotency-Key header (e.g. a UUID) so that a retried "
                "checkout cannot place a second order.",
                code="idempotency_key_missing",
            )
        data = CheckoutInput(data=request.data)
        data.is_valid(raise_exception=True)
        body = data.validated_data
        outcome = services.checkout(
            customer_id=customer_id(request),
            key=key,
            address=services.ShippingAddress(**body["shipping_address"]),
            payment_token=body["payment_token"],
            coupon_code=body.get("coupon"),
            fingerprint=services.request_fingerprint(request.data),
        )
        status_code, body = _checkout_response(outcome)
        headers = None
        if body.get("code") == "payment_pending":
            headers = {"Retry-After": PAYMENT_PENDING_RETRY_AFTER}
        return Response(body, status=status_code, headers=headers)


def _checkout_response(outcome: services.CheckoutOutcome) -> tuple[int, dict]:
    """The status and body of a checkout outcome, as the key stored them."""
    if isinstance(outcome, services.Replay):
        return outcome.status, outcome.body
    if isinstance(outcome, ApplicationError):
        return error_status_and_body(outcome)
    return success_status("created"), outcome.body


class OrderCursorPagination(SafeCursorPagination):
    ordering = ("-created_at", "-id")


class OrderListApi(APIView):
    permission_classes = [IsCustomer]
    pagination_class = OrderCursorPagination

    @extend_schema(responses={200: OrderOutput(many=True)})
    def get(self, request):
        paginator = self.pagination_class()
        # The page and its prefetched lines are read in the customer's own
        # transaction: row-level security shows no order to any other.
        with customer_transaction(customer_id(request)):
            orders = selectors.order_list(customer_id=customer_id(request))
            page = paginator.paginate_queryset(orders, request, view=self)
            body = OrderOutput(page, many=True).data
        return paginator.get_paginated_response(body)


class OrderDetailApi(APIView):
    permission_classes = [IsCustomer]

    @extend_schema(responses={200: OrderOutput})
    def get(self, request, order_id):
        order = selectors.order_get(customer_id=customer_id(request), order_id=order_id)
        if order is None:
            # 404, not 403: another customer's order id reveals nothing.
            raise NotFound("This order does not exist.")
        return Response(OrderOutput(order).data)


class OrderCancelApi(APIView):
    permission_classes = [IsCustomer]

    @extend_schema(
        request=None,
        description="Cancel a paid order: its items go back on hand and the "
        "charge is refunded through the payment gateway, once. The cancel "
        "and the promise of the refund commit together; if the gateway does "
        "not answer at once, the refund is retried in the background. A "
        "second cancel is a 409 and refunds nothing again.",
        responses={
            200: OrderOutput,
            409: error_response(
                "`not_cancellable`: only paid orders can be (a cancelled one included)."
            ),
        },
    )
    def post(self, request, order_id):
        services.order_cancel(customer_id=customer_id(request), order_id=order_id)
        order = selectors.order_get(customer_id=customer_id(request), order_id=order_id)
        return Response(OrderOutput(order).data)
