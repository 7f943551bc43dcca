"""The model server (FastAPI on uvicorn) and its deployment lifecycle.

Modules: `app` (routes), `schemas` (request/response bodies from lib.features), `loader` (hot
swap), `service` (detached process, access key), `client` (finding and calling the server),
`deploy` (the 04/07 workflows). CLI: `python -m lib.serving status|start|stop|logs`.
"""
