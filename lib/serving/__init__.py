"""The model server (FastAPI on uvicorn) and its deployment lifecycle.

Modules: `app` (wires the server together), `routes/` (scoring, feedback, admin, ops routers),
`deps` (the served model and the app's parts as FastAPI dependencies), `scoring` (score and log),
`schemas` (request bodies from lib.features), `responses` (response bodies), `csv_body` (text/csv
on /invocations), `errors` (JSON error bodies), `middleware` (body limit, access key, timing),
`prometheus` (metrics), `openapi` (schema and offline /docs), `prediction_log` (the batched
prediction-log writer), `loader` (hot swap, decision threshold), `service` (detached process,
access key), `client` (finding and calling the server), `deploy` (the 04/07 workflows).
CLI: `python -m lib.serving status|start|stop|logs`.
"""
