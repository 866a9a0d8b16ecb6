"""`kubectl llmrollout dashboard`: a local web UI on the plugin's client and commands."""
