"""placeholder"""

from __future__ import annotations

from rollout_operator.kube import KubeClient


async def serve(client: KubeClient, namespace: str | None, address: str, port: int) -> None:
    raise NotImplementedError
