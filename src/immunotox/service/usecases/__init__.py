"""The service's use cases: record, correct and stop events, assess, self-report, acknowledge and
resolve alerts — the business logic the JSON API routes and the web UI's forms both call.

No module here imports FastAPI: a caller passes a :class:`~.base.Call` (who, when, which request)
and gets a :class:`~.base.Written` answer or an :class:`~immunotox.service.problems.ApiError`.
"""
