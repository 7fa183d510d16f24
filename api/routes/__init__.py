"""The HTTP endpoints of the read API: small module-level functions that take their parts
through FastAPI dependencies (:mod:`api.deps`) and leave errors to the app's handlers."""
