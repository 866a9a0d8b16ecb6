"""The Kubernetes API client of `kubectl llmrollout`, its dashboard and the operator's own calls.

Credentials come from kubernetes_asyncio's kubeconfig loader, so every kubeconfig a user has
works as it does for kubectl: contexts, tokens, client certificates, OIDC and exec credential
plugins (`aws eks get-token`, `gke-gcloud-auth-plugin`, `kubelogin`); in a pod, the
ServiceAccount. The loader writes certificate and key data to temporary files (Python's ssl
loads them from files only): they go to a private directory that is deleted as soon as the
client's TLS context holds them, so no key material stays on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import ConfigException, kube_config, load_incluster_config

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class KubeError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"HTTP {status}: {message}" if status else message)


def _message(error: ApiException) -> str:
    try:
        body = json.loads(error.body or "")
    except ValueError:
        return str(error.reason or error.body or "")
    return str(body.get("message") if isinstance(body, dict) else body)


def _kubeconfig_files(kubeconfig: str | None, context: str | None) -> list[str] | None:
    """The kubeconfig files to merge, or None for the ServiceAccount (in a pod, none named)."""
    if not kubeconfig and not context and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    path = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    files = [os.path.expanduser(p) for p in path.split(os.pathsep) if p]
    if not any(os.path.exists(f) for f in files):
        raise KubeError(
            0,
            f"no kubeconfig at {path} and not in a pod: pass --kubeconfig, "
            "set KUBECONFIG, or run where ~/.kube/config exists",
        )
    return files


@dataclass
class KubeClient:
    api: ApiClient
    server: str
    namespace: str  # the context's (or the ServiceAccount's) namespace; "default" without one
    context: str  # the kubeconfig context's name ("in-cluster" in a pod)

    @classmethod
    async def connect(cls, kubeconfig: str | None = None, context: str | None = None) -> KubeClient:
        """In a pod (and with no kubeconfig or context named): the ServiceAccount; else the
        kubeconfig from `kubeconfig`, KUBECONFIG (a `:`-separated list), ~/.kube/config."""
        configuration = Configuration()
        files = _kubeconfig_files(kubeconfig, context)
        if files is None:
            load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()  # noqa: ASYNC240 (tiny)
            return cls(ApiClient(configuration), str(configuration.host), namespace, "in-cluster")
        private = tempfile.mkdtemp(prefix="llm-rollout-kube-")  # mode 0700
        try:
            loader = await kube_config.load_kube_config(
                config_file=os.pathsep.join(files),
                context=context,
                client_configuration=configuration,
                persist_config=False,
                temp_file_path=private,
            )
            api = ApiClient(configuration)  # builds the TLS context from the files now
        except ConfigException as error:
            raise KubeError(0, f"kubeconfig {os.pathsep.join(files)}: {error}") from error
        finally:
            shutil.rmtree(private, ignore_errors=True)
            # The loader caches content -> file name; forget the names just deleted.
            for content, name in list(kube_config._temp_files.items()):
                if name.startswith(private):
                    del kube_config._temp_files[content]
        if getattr(loader, "exec_plugin_expiry", None) is not None:
            # An exec credential that expires (EKS tokens last 15 min): the loader re-runs
            # the plugin once it has, before the request that needs it.
            async def refresh(conf: Configuration) -> None:
                await loader.load_from_exec_plugin()
                conf.api_key["BearerToken"] = loader.token

            configuration.refresh_api_key_hook = refresh
        current = loader.current_context or {}
        namespace = (current.get("context") or {}).get("namespace") or "default"
        return cls(api, str(configuration.host), namespace, str(current.get("name", "")))

    async def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        """One call with the logged-in credentials; an error status raises KubeError."""
        try:
            return await self.api.call_api(
                path,
                method,
                body=body,
                auth_settings=["BearerToken"],
                header_params={"Accept": "application/json", "Content-Type": content_type},
                response_types_map={200: "object", 201: "object", 202: "object"},
                _return_http_data_only=True,
            )
        except ApiException as error:
            if not error.status:  # a timeout or refused connection, not an answer
                raise OSError(str(error.reason)) from error
            raise KubeError(int(error.status), _message(error)) from error

    async def watch(
        self, path: str, resource_version: str, opened: Callable[[], None]
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch of `path` from `resource_version`, as dicts, until the
        server ends the stream; `opened()` is called once the server has accepted it. An
        ERROR event raises KubeError with its code (410: the version is too old; list
        again); a connection lost raises OSError.

        Not kubernetes_asyncio's `Watch`: it deserializes every event into its generated
        models (the operator needs three fields of a pod) and answers a 410 by watching
        again from the same version.
        """
        query = [("watch", "true"), ("allowWatchBookmarks", "true")]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        try:
            response = await self.api.call_api(
                path, "GET", query_params=query, auth_settings=["BearerToken"],
                header_params={"Accept": "application/json"}, _preload_content=False,
                _request_timeout=aiohttp.ClientTimeout(sock_connect=10),
            )  # fmt: skip
        except ApiException as error:
            raise OSError(str(error.reason)) from error
        async with response:
            if response.status != 200:
                raise KubeError(response.status, (await response.text())[:300])
            opened()
            try:
                async for line in response.content:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        raise KubeError(int(status.get("code") or 0), str(status.get("message")))
                    yield event
            except aiohttp.ClientError as error:  # the stream cut mid-way
                raise OSError(str(error)) from error

    async def close(self) -> None:
        await self.api.close()


def rollout_path(namespace: str | None, name: str = "") -> str:
    """A rollout's API path, its namespace's list, or (namespace None) every namespace's."""
    if namespace is None:
        return "/apis/llm-rollout.io/v1alpha1/llmrollouts"
    base = f"/apis/llm-rollout.io/v1alpha1/namespaces/{namespace}/llmrollouts"
    return f"{base}/{name}" if name else base
