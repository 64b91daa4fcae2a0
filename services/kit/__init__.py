"""What the three Huanzhi services truly share: settings, errors, database sessions, tokens, paging, peers,
health. Nothing here imports from a service."""
