"""Where `ctx.http` may connect: public addresses, and what the settings allow besides.

    policy = EgressPolicy.from_settings(settings)
    async with egress_client(policy) as http:          # an httpx.AsyncClient
        await http.get("http://169.254.169.254/latest/meta-data/")   # Forbidden, nothing sent

Integration code names its URLs itself, often from a payload or a config, so `http.request` must
not become a way into the worker's own network: the cloud metadata service (169.254.169.254,
which hands out credentials), the database, the Temporal frontend, anything on loopback or a
private network. The framework's own clients (NetHunt, KeyCRM, the voice assistant, ElevenLabs,
the model) use their configured base URLs and do not go through here.

- An address is allowed when it is public (`ipaddress`' `is_global`, not multicast), when
  HAPP_HTTP_ALLOW_PRIVATE=1 and it is loopback or in a private network (`PRIVATE_NETWORKS`), or
  when HAPP_HTTP_ALLOWED_NETWORKS lists its network. Link-local addresses (the metadata service)
  are allowed only by that list. An IPv4 address written as IPv6 (`::ffff:127.0.0.1`, NAT64's
  `64:ff9b::7f00:1`) is judged as the IPv4 address it stands for.
- The host name is resolved when the connection is made, every address it resolves to is
  checked (one refused refuses the host) and the connection goes to an address that was checked,
  so a DNS answer that changes after the check (rebinding) cannot redirect the request. TLS still
  verifies the certificate against the host name.
- Proxies from the environment (HTTP_PROXY …) are not used: the proxy would be the address
  dialled, and the policy could not see the destination. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
import typing
from collections.abc import Iterable
from dataclasses import dataclass

import httpcore
import httpx

from happ_integ.errors import Forbidden
from happ_integ.settings import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# What HAPP_HTTP_ALLOW_PRIVATE=1 opens: loopback, RFC 1918, carrier-grade NAT, IPv6 unique local.
PRIVATE_NETWORKS: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_ALLOW_HINT = (
    "allow it with HAPP_HTTP_ALLOWED_NETWORKS (a comma-separated list of networks), or "
    "HAPP_HTTP_ALLOW_PRIVATE=1 for loopback and private networks"
)


def _plain(ip: Address) -> Address:
    """The IPv4 address an IPv6 one stands for (mapped or NAT64), else the address itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def _kind(ip: Address) -> str:
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if any(ip in net for net in PRIVATE_NETWORKS if net.version == ip.version):
        return "a private-network address"
    return "not a public address"


@dataclass(frozen=True)
class EgressPolicy:
    allow_private: bool = False
    allowed_networks: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressPolicy:
        return cls(
            allow_private=settings.http_allow_private,
            allowed_networks=tuple(ipaddress.ip_network(str(n)) for n in settings.http_allowed_networks),
        )

    def refusal(self, address: str | Address) -> str | None:
        """Why `address` may not be reached (a phrase naming its kind), or None when it may."""
        given = ipaddress.ip_address(address)
        ip = _plain(given)
        # A listed network allows the address as written or as the IPv4 address it stands for.
        if any(a in net for a in {given, ip} for net in self.allowed_networks if net.version == a.version):
            return None
        if ip.is_global and not ip.is_multicast:
            return None
        if self.allow_private and any(ip in net for net in PRIVATE_NETWORKS if net.version == ip.version):
            return None
        return _kind(ip)

    def check(self, host: str, addresses: Iterable[str]) -> list[str]:
        """`addresses` (what `host` resolved to, in order, without repeats), or `Forbidden`
        when any of them is refused."""
        checked = list(dict.fromkeys(addresses))
        for address in checked:
            why = self.refusal(address)
            if why is not None:
                target = host if host == address else f"{host} (it resolves to {address})"
                raise Forbidden(
                    f"http.request to {target} refused: {address} is {why}; {_ALLOW_HINT}",
                    address=address,
                )
        return checked


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the policy in front of every connection it opens."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"{host} does not resolve ({exc})") from None
        # The zone of a scoped IPv6 address ("fe80::1%eth0") is not part of the address judged.
        addresses = self._policy.check(host, [str(info[4][0]).split("%", 1)[0] for info in found])
        failure: Exception = httpcore.ConnectError(f"{host} resolved to no address")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Forbidden("http.request may not connect to a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes milliseconds: once per process, not once per request.
    return httpx.create_ssl_context()


class _CheckedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: EgressPolicy) -> None:
        context = _ssl_context()
        super().__init__(verify=context, trust_env=False)
        # httpx offers no parameter for httpcore's network backend: its pool is built again with
        # ours, the rest as httpx would (tests/ops/test_http_egress.py fails if it were not used).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context, network_backend=_CheckedBackend(policy), max_connections=10
        )


def egress_client(policy: EgressPolicy, **kwargs: typing.Any) -> httpx.AsyncClient:
    """An httpx client that connects only where `policy` allows; close it after use (`async with`)."""
    return httpx.AsyncClient(
        transport=_CheckedTransport(policy),
        trust_env=False,
        follow_redirects=False,
        headers={"User-Agent": "happ-integ/0.1"},
        **kwargs,
    )
