"""The server's routes, one router per concern; `create_app` includes them.

Scoring and feedback routers are built per app (their request bodies come from the served model's
feature set); the operational routes do not depend on it.
"""
