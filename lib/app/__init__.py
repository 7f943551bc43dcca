"""The lab's web application: Explain, Monitoring, Models and Jobs pages over the project's stores.

Server-rendered pages on the FastAPI/uvicorn stack the model server already uses, with plotly.js served
from the `plotly` package (no CDN), so it works offline. Every page reads through `lib/` (registry,
metrics store, jobs history), never a second copy of those queries. Start it with `make app` or
`python -m lib.app`.
"""


class AppError(RuntimeError):
    """A page cannot be built from the stores as they are; the message names what to run."""
