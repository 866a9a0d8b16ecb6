"""A small Kubernetes API client on aiohttp, from the credentials kopf finds.

kopf already knows how to log in (in-cluster ServiceAccount, or KUBECONFIG with
its contexts, tokens and client certificates); this reuses that and adds only
the few calls the operator and `kubectl llmrollout` make besides kopf's own.
"""

from __future__ import annotations

import base64
import ssl
import tempfile
from typing import Any

import aiohttp
import kopf


class KubeError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(f"HTTP {status}: {message}")


def connection() -> kopf.ConnectionInfo:
    """In-cluster ServiceAccount credentials if present, else KUBECONFIG / ~/.kube/config."""
    settings = kopf.OperatorSettings()
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
        settings=settings
    )
    if info is None:
        raise KubeError(0, "no Kubernetes credentials: not in a pod and no kubeconfig found")
    return info


def _text(data: str | bytes) -> str:
    return data.decode() if isinstance(data, bytes) else data


def _ssl(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if info.insecure:
        return False
    context = ssl.create_default_context(cafile=info.ca_path)
    if info.ca_data:
        context.load_verify_locations(cadata=_text(info.ca_data))
    cert, key = info.certificate_path, info.private_key_path
    if info.certificate_data and info.private_key_data:
        # ssl loads client certificates from files only.
        files = []
        for data in (info.certificate_data, info.private_key_data):
            handle = tempfile.NamedTemporaryFile(suffix=".pem", delete=False)  # noqa: SIM115
            handle.write(data if isinstance(data, bytes) else data.encode())
            handle.close()
            files.append(handle.name)
        cert, key = files
    if cert:
        context.load_cert_chain(cert, key)
    return context


class KubeClient:
    def __init__(self, info: kopf.ConnectionInfo) -> None:
        self.server = info.server.rstrip("/")
        headers = {"Accept": "application/json"}
        if info.token:
            headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
        elif info.username and info.password:
            pair = f"{info.username}:{info.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        connector = aiohttp.TCPConnector(ssl=_ssl(info))
        self.session = aiohttp.ClientSession(headers=headers, connector=connector)

    async def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        async with self.session.request(
            method, self.server + path, json=body, headers={"Content-Type": content_type}
        ) as response:
            payload = await response.json(content_type=None)
            if response.status >= 400:
                message = payload.get("message") if isinstance(payload, dict) else payload
                raise KubeError(response.status, str(message))
            return payload

    async def close(self) -> None:
        await self.session.close()


def rollout_path(namespace: str, name: str = "") -> str:
    base = f"/apis/llm-rollout.io/v1alpha1/namespaces/{namespace}/llmrollouts"
    return f"{base}/{name}" if name else base
