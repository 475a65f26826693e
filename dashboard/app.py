"""fleetlake operators' console (Streamlit, multipage): reads PostgreSQL `gold.*` only, through
the read-only role. Started by `fleetlake dashboard` (dashboard/serve.py)."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import ui

ROUTES = Path(__file__).with_name("routes")  # not "pages/": Streamlit would serve those itself

st.set_page_config(page_title="fleetlake", page_icon=":material/local_shipping:", layout="wide")
config = ui.current_config()
navigation = st.navigation({
    "Fleet": [
        st.Page(ROUTES / "overview.py", title="Overview", icon=":material/monitoring:",
                url_path="overview", default=True),
        st.Page(ROUTES / "alerts.py", title="Alerts", icon=":material/warning:",
                url_path="alerts"),
        st.Page(ROUTES / "fleet_map.py", title="Fleet map", icon=":material/map:",
                url_path="fleet_map"),
        st.Page(ROUTES / "car.py", title="Car detail", icon=":material/directions_car:",
                url_path="car"),
    ],
    "Data engineering": [
        st.Page(ROUTES / "data_quality.py", title="Data quality", icon=":material/rule:",
                url_path="data_quality"),
        st.Page(ROUTES / "pipeline.py", title="Pipeline health", icon=":material/sync:",
                url_path="pipeline"),
    ],
})
ui.refresh_controls(config)
navigation.run()
