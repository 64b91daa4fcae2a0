"""What every service's tests share: the test region tree and its users (`builders`), tokens (`tokens`),
problem+json assertions (`problems`), row counts (`rows`) and apps and clients for any service (`apps`).

The root conftest turns these into fixtures; a service folder's conftest only says which service it tests
(the `service` fixture) and adds what is its own.
"""
