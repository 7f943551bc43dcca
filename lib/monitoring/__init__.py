"""Model monitoring: performance over time, data and prediction drift, alert rules, dashboard.

Everything reads the prediction log with its delayed ground truth (`lib.metrics_store`) and the
training reference profile of the model version that served it (`lib.profile`). The time axis is
always the event time (`event_ts`), not the time a row was written, so a simulated week shows as a
week. One module per kind of work, so a light user does not pull in the heavy ones:

  performance  pure: a prediction log (DataFrame) -> volume, quality and latency per window
  drift        pure: PSI / KS of logged inputs and predictions against the training profile
  alerts       pure: the alert rules on one window and its drift table
  report       reads the stores: the model's log and its reference profile -> MonitoringReport
  charts       matplotlib figures of a MonitoringReport
  dashboard    the self-contained HTML page (and the PNGs it embeds)
  exporter     the same results as Prometheus metrics, computed at scrape time
  __main__     the CLI: `python -m lib.monitoring check|report|exporter`
"""

from __future__ import annotations


class MonitoringError(RuntimeError):
    """Monitoring cannot run; the message says what to run or fix."""
