"""Sidecar injection: a mutating admission webhook for pods (pure mutation + thin server)."""
