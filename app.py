"""The entry point: `streamlit run app.py`.

It declares the pages (with st.navigation, so the first one is called "Home" in the sidebar
instead of the file name) and runs the one the URL asks for. Nothing heavy happens here: no
TensorFlow, no dataset; only pandas and plotly, which the pages draw with anyway.
The pages live in app_pages/, not pages/: a folder named pages/ next to the entry file turns on
Streamlit's older folder routing, which a fresh server used for its first deep link.
"""

# pandas and plotly are imported here, whole, before any page can import them: two sessions that
# imported them for the first time at once, by different routes, once got a partially initialized
# pandas ("no attribute 'Series'") on the Draw page.
import pandas  # noqa: F401
import plotly.graph_objects  # noqa: F401
import streamlit as st

PAGES = [
    st.Page("app_pages/home.py", title="Home", icon="🧠", default=True),
    st.Page("app_pages/data.py", title="Data", icon="📊", url_path="Data"),
    st.Page("app_pages/build.py", title="Build", icon="🧱", url_path="Build"),
    st.Page("app_pages/train.py", title="Train", icon="🏋️", url_path="Train"),
    st.Page("app_pages/compare.py", title="Compare", icon="📈", url_path="Compare"),
    st.Page("app_pages/sweeps.py", title="Sweeps", icon="🎲", url_path="Sweeps"),
    st.Page("app_pages/inspect_run.py", title="Inspect", icon="🔬", url_path="Inspect"),
    st.Page("app_pages/draw.py", title="Draw", icon="✏️", url_path="Draw"),
    st.Page("app_pages/robustness.py", title="Robustness", icon="🧪", url_path="Robustness"),
    st.Page("app_pages/models.py", title="Models", icon="🧳", url_path="Models"),
]

st.navigation(PAGES).run()
