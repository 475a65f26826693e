"""Page entry point (see dashboard/views/pipeline.py)."""
from dashboard.views import pipeline

pipeline.page()
