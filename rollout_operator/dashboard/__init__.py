"""`kubectl llmrollout dashboard`: a local web UI over the same client and commands as the plugin."""
