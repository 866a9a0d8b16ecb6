"""Kubernetes label selectors: which pods a rollout's `spec.selector` picks.

One implementation for everyone who asks the question: the control channel
(`rollout_operator.auth`, which pod may follow a rollout) and the webhook
(`rollout_operator.webhook.mutate`, which rollout a new pod joins) must never
disagree, or a pod would get a sidecar that the operator then refuses.

Semantics are the API server's (`metav1.LabelSelector`): every `matchLabels` pair and
every `matchExpressions` requirement must hold; `{}` selects every pod. A rollout
*without* a selector selects no pod: following a rollout hands a pod budget slices and
a say in its analysis, so it is granted only to pods the rollout names.
Pure: pydantic only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from proxy.config.model import LabelSelector


def selects(selector: LabelSelector | Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether `selector` (a model, or a raw `spec.selector`) picks a pod with `labels`.

    None selects no pod; a raw selector that is not a valid label selector selects none.
    """
    if selector is None:
        return False
    if not isinstance(selector, LabelSelector):
        try:
            selector = LabelSelector.model_validate(selector)
        except ValidationError:
            return False
    return selector.selects(labels)
