"""Answer quality, as plain code: the rule-based scorer and the LLM judge's pure half."""
