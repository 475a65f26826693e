"""Page entry point (see dashboard/views/fleet_map.py)."""
from dashboard.views import fleet_map

fleet_map.page()
