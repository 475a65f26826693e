"""Page entry point (see dashboard/views/alerts.py)."""
from dashboard.views import alerts

alerts.page()
