"""The entry point: `streamlit run app.py`.

It declares the pages (with st.navigation, so the first one is called "Home" in the sidebar
instead of the file name) and runs the one the URL asks for. Nothing heavy happens here.
"""

import streamlit as st

PAGES = [
    st.Page("pages/0_🧠_Home.py", title="Home", icon="🧠", default=True),
    st.Page("pages/1_📊_Data.py", title="Data", icon="📊", url_path="Data"),
    st.Page("pages/2_🧱_Build.py", title="Build", icon="🧱", url_path="Build"),
    st.Page("pages/3_🏋️_Train.py", title="Train", icon="🏋️", url_path="Train"),
    st.Page("pages/4_📈_Compare.py", title="Compare", icon="📈", url_path="Compare"),
    st.Page("pages/5_🔬_Inspect.py", title="Inspect", icon="🔬", url_path="Inspect"),
    st.Page("pages/6_✏️_Draw.py", title="Draw", icon="✏️", url_path="Draw"),
]

st.navigation(PAGES).run()
