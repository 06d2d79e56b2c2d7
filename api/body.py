"""How the gateway reads a JSON body: authentication first, then `json.loads` and the limits of
`happ_integ.json_limits`.

    router = APIRouter(route_class=GuardedRoute)
    router.add_api_route(path, endpoint, dependencies=[Depends(webhook_auth("sofa", BearerAuth()))])

Every FastAPI route built on `GuardedRoute` authenticates before its body is read: FastAPI
itself reads and parses the body before it solves any dependency, so a caller with a wrong token
would otherwise have a megabyte read and parsed for nothing. The route's authentication is
- each route-level dependency (`dependencies=[Depends(check)]`) that is a plain function taking
  only the request (`async def check(request: Request) -> None`, as `api.auth`'s are): it runs
  here first, once, and FastAPI's own pass finds it done;
- the admin token, for a route taking `AdminDep`.
Then the body is parsed here, so a document nested too deeply, text with a NUL or an unpaired
surrogate, or bytes that are not UTF-8 are a 422 naming the problem, before any handler, store or
workflow sees them.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import typing
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from fastapi import Request, Response, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api.deps import AdminDep, require_admin, runtime_of
from happ_integ.errors import ValidationFailed
from happ_integ.json_limits import MAX_JSON_DEPTH, check_json

Check = Callable[[Request], Awaitable[None]]
# Marks a check wrapped by `_once`; the request's scope remembers which checks already passed.
_ONCE = "__happ_before_body__"
_PASSED = "happ.checks_passed"
_ADMIN_CHECK = typing.get_args(AdminDep)[1].dependency


def parse_json(body: bytes) -> Any:
    """The decoded body, or `json.JSONDecodeError` (FastAPI's 422) saying what is wrong with it."""
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise json.JSONDecodeError(exc.msg, "", exc.pos) from None
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError("the body is not UTF-8", "", exc.start) from None
    except RecursionError:
        raise json.JSONDecodeError(f"the body is nested deeper than {MAX_JSON_DEPTH} levels", "", 0) from None
    try:
        check_json(value)
    except ValidationFailed as exc:
        raise json.JSONDecodeError(exc.message, "", 0) from None
    return value


class GuardedRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class GuardedRoute(APIRoute):
    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        dependencies: Sequence[params.Depends] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(path, endpoint, dependencies=[_before_body(d) for d in dependencies or ()], **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        checks = [
            typing.cast(Check, d.dependency) for d in self.dependencies if getattr(d.dependency, _ONCE, False)
        ]
        admin = _takes(self.dependant, _ADMIN_CHECK)

        async def guarded(request: Request) -> Response:
            guarded_request = GuardedRequest(request.scope, request.receive)
            # Nothing of the body has been read yet: a wrong credential is refused (401) here.
            if admin:
                require_admin(guarded_request, runtime_of(guarded_request))
            for check in checks:
                await check(guarded_request)
            return await handle(guarded_request)

        return guarded


def _before_body(depends: params.Depends) -> params.Depends:
    """A route-level dependency that needs only the request, made to run once, before the body."""
    call = depends.dependency
    if call is None or getattr(call, _ONCE, False) or not _takes_only_the_request(call):
        return depends
    return dataclasses.replace(depends, dependency=_once(call))


def _takes_only_the_request(call: Callable[..., Any]) -> bool:
    # A plain coroutine function: a security scheme object (HTTPBearer …) stays FastAPI's, since
    # FastAPI reads the OpenAPI security of a route from such objects.
    if not inspect.iscoroutinefunction(call):
        return False
    try:
        parameters = list(inspect.signature(call, eval_str=True).parameters.values())
    except (NameError, TypeError, ValueError):
        return False
    return (
        len(parameters) == 1
        and isinstance(parameters[0].annotation, type)
        and issubclass(parameters[0].annotation, Request)
    )


def _once(check: Check) -> Check:
    async def once(request: Request) -> None:
        passed: set[int] = request.scope.setdefault(_PASSED, set())
        if id(once) in passed:
            return
        await check(request)
        passed.add(id(once))

    once.__name__ = getattr(check, "__name__", "check")
    once.__doc__ = check.__doc__
    setattr(once, _ONCE, True)
    return once


def _takes(dependant: Dependant, call: Callable[..., Any]) -> bool:
    """Whether `call` is among the dependencies of `dependant`, at any depth."""
    return any(sub.call is call or _takes(sub, call) for sub in dependant.dependencies)
