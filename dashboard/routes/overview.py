"""Page entry point (see dashboard/views/overview.py)."""
from dashboard.views import overview

overview.page()
