"""Page entry point (see dashboard/views/car.py)."""
from dashboard.views import car

car.page()
