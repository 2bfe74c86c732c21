"""ASGI entry point for `uvicorn api.asgi:app` and `loyalty serve --workers N`."""

import os

from api.app import create_app
from api.request_log import configure_logging
from api.settings import load_settings

_settings = load_settings()
configure_logging(_settings.log_format, _settings.log_level)
if os.environ.get("LOYALTY_DEMO") == "1":
    _settings = _settings.with_demo()
else:
    _settings.require_secret()

app = create_app(_settings)
if _settings.scheduler:  # LOYALTY_SCHEDULER=1 / `loyalty serve --scheduler`: the daily jobs in-process
    from api.scheduler import Scheduler, with_scheduler
    from loyalty.rules import load_rules

    from api.metrics import scheduler_run

    on_run = scheduler_run if _settings.metrics else None
    app = with_scheduler(app, Scheduler(_settings, load_rules(_settings.rules_path), on_run=on_run))
if _settings.webhooks:  # LOYALTY_WEBHOOKS=1 / `loyalty serve --webhooks`: a webhook dispatcher in-process
    from api.webhooks import with_webhooks
    from loyalty.rules import load_rules

    app = with_webhooks(app, _settings, load_rules(_settings.rules_path))
