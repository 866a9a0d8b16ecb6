"""Local fake providers that speak the providers' HTTP exactly, with scripted faults."""
