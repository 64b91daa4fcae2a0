"""A compact feed of issues for the other services: every issue a list would show, one JSON line each."""
