"""The coach's Streamlit app: navigation over the pages in ``coach.ui`` (run: ``streamlit run app.py``)."""

import streamlit as st

from coach.ui import chat_page, library_page, rewrite_page, sessions_page, settings_page

st.set_page_config(page_title="Coach: write for the business", page_icon=":material/record_voice_over:",
                   layout="wide")
navigation = st.navigation([
    st.Page(rewrite_page.render, title="Rewrite", icon=":material/edit_note:", url_path="rewrite", default=True),
    st.Page(chat_page.render, title="Chat", icon=":material/forum:", url_path="chat"),
    st.Page(sessions_page.render, title="Sessions", icon=":material/history:", url_path="sessions"),
    st.Page(library_page.render, title="Library", icon=":material/menu_book:", url_path="library"),
    st.Page(settings_page.render, title="Settings", icon=":material/settings:", url_path="settings"),
])
navigation.run()
