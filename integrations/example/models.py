"""Payloads and responses of the example handlers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class BasePayload(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    received_at: str | None = Field(default=None, alias="_receivedAt")
    action: str | None = Field(default=None, alias="_action")


class BaseResponse(BaseModel):
    success: bool
    error: str | None = None


class InitWebhookPayload(BasePayload):
    phone: str | None = None
    conversationId: str | None = None
    metadata: dict[str, Any] | None = None


class InitContext(BaseModel):
    model_config = ConfigDict(extra="allow")

    clientName: str
    company: str | None = None
    email: str | None = None


class InitWebhookResponse(BaseModel):
    firstMessage: str
    context: InitContext


class RetryPayload(BasePayload):
    callId: str | None = None


class RetryResponse(BaseResponse):
    processed: int = 0


class TestCallPayload(BasePayload):
    phoneNumber: str | None = None
    assistantId: int | None = None
    authToken: str | None = Field(
        default=None, description="Bearer for the voice API; omit to use SAAS_AUTH_TOKEN"
    )
    # It becomes a URL path segment: letters, digits, '-' and '_' only, so it cannot climb out of it.
    sip: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")


class TestCallResponse(BaseResponse):
    callId: str | None = None
    message: str | None = None


class NethuntPayload(BasePayload):
    recordId: str | None = None
    phone: str | None = None


class NethuntResponse(BaseResponse):
    callId: str | None = None


class CreateOrderPayload(BasePayload):
    phone: str = Field(description="Customer phone", examples=["+380991234567"], max_length=32)
    product_id: str = Field(description="Product ID", max_length=64)
    # The orders table stores an integer column; the bound says so before anything runs.
    quantity: int = Field(default=1, ge=1, le=10_000, description="Quantity")


class CreateOrderResponse(BaseResponse):
    orderId: str | None = None
