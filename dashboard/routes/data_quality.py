"""Page entry point (see dashboard/views/data_quality.py)."""
from dashboard.views import data_quality

data_quality.page()
