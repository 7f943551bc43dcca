"""One module per page: each exposes `router` (HTML at /<page>, JSON under /api/<page>/…)."""
