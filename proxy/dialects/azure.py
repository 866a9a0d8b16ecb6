"""Azure OpenAI addressing: OpenAI chat and embeddings under Azure's deployment paths.

Azure OpenAI speaks OpenAI's request and answer bodies, so its traffic stays bytes
through (or is translated to OpenAI chat for other SDKs); only the address and the
credential differ. This maps the path the OpenAI SDK calls below its base URL
(``/chat/completions``) to Azure's (``/openai/deployments/{deployment}/chat/completions
?api-version=...``) and names the header the credential goes in.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from proxy.config import Azure
from proxy.dialects.base import BadRequest

#: The OpenAI endpoints Azure serves under a deployment.
_ENDPOINTS = ("/chat/completions", "/embeddings")


def azure_target(target: str, model: str, azure: Azure) -> str:
    """Azure's path and query for `target` (an OpenAI path below ``/v1``, with its query)
    calling `model`: the deployment that serves it, and the configured api-version in
    place of any the app sent."""
    path, _, query = target.partition("?")
    if path not in _ENDPOINTS:
        raise BadRequest(
            f"Azure OpenAI providers serve {' and '.join(_ENDPOINTS)} through the sidecar, "
            f"not {path[:100]!r}; send this request to an OpenAI provider"
        )
    kept = [part for part in query.split("&")
            if part and unquote(part.partition("=")[0]) != "api-version"]  # fmt: skip
    deployment = quote(azure.deployment_for(model), safe="")
    query = "&".join([f"api-version={azure.api_version}", *kept])
    return f"/openai/deployments/{deployment}{path}?{query}"


def azure_auth(key: str, azure: Azure) -> dict[str, str]:
    """The credential header: the key as ``api-key``, or an Entra token as a bearer."""
    if azure.credential == "entra-token":
        return {"Authorization": f"Bearer {key}"}
    return {"api-key": key}
