"""The coach's Streamlit app: navigation over the pages in ``coach.ui`` (run: ``streamlit run app.py``)."""

import streamlit as st

from coach.ui import chat_page, library_page, rewrite_page, sessions_page, settings_page

# No page or page_icon icons: the browser tab's favicon would be fetched from fonts.gstatic.com; the app calls nowhere.
st.set_page_config(page_title="Coach: write for the business", layout="wide")
navigation = st.navigation([
    st.Page(rewrite_page.render, title="Rewrite", url_path="rewrite", default=True),
    st.Page(chat_page.render, title="Chat", url_path="chat"),
    st.Page(sessions_page.render, title="Sessions", url_path="sessions"),
    st.Page(library_page.render, title="Library", url_path="library"),
    st.Page(settings_page.render, title="Settings", url_path="settings"),
])
navigation.run()
