"""create-order: an order stored and answered with its id."""

from __future__ import annotations

from happ_integ import Context, define_handler
from integrations.example.models import CreateOrderPayload, CreateOrderResponse

OPENAPI = {
    "summary": "Create new order",
    "description": "Creates a new order and sends it to CRM",
    "tags": ["Orders"],
    "requestBody": {
        "description": "Order details",
        "schema": {
            "type": "object",
            "required": ["phone", "product_id"],
            "properties": {
                "phone": {"type": "string", "description": "Customer phone", "example": "+380991234567"},
                "product_id": {"type": "string", "description": "Product ID"},
                "quantity": {"type": "number", "description": "Quantity", "example": 1},
            },
        },
    },
    "responses": {
        "200": {
            "description": "Order created successfully",
            "schema": {
                "type": "object",
                "properties": {"success": {"type": "boolean"}, "orderId": {"type": "string"}},
            },
        },
    },
}


@define_handler(name="create-order", endpoint="POST /webhook/create-order", openapi=OPENAPI)
async def create_order(ctx: Context[CreateOrderPayload]) -> CreateOrderResponse:
    p = ctx.payload
    order_id = f"ord_{ctx.uuid().replace('-', '')[:12]}"
    await ctx.db.insert(
        "orders", {"id": order_id, "phone": p.phone, "product_id": p.product_id, "quantity": p.quantity}
    )
    return CreateOrderResponse(success=True, orderId=order_id)


@define_handler(
    name="create-order-inline",
    endpoint="POST /webhook/create-order-inline",
    durable=False,
    openapi={
        **OPENAPI,
        "summary": "Create new order (inline)",
        "description": "create-order run in the request, without a Temporal run: the same work, for comparing the two modes (`make bench`)",
    },
)
async def create_order_inline(ctx: Context[CreateOrderPayload]) -> CreateOrderResponse:
    return await create_order(ctx)
