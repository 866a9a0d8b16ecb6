"""The llm-rollout operator: walks LLMRollout steps, judges them, rolls back, keeps the budget."""
