"""The Streamlit pages: thin shells that read widgets, call the ``coach`` services and render the results.

One module per page (``rewrite_page``, ``chat_page``, ``sessions_page``, ``library_page``,
``settings_page``), each with a ``render()`` that ``app.py`` hands to ``st.navigation``. Shared pieces:
``markdown`` (escaping and the word diff), ``context`` (settings for this browser session, stores, model
warm-up), ``guard`` (errors as short messages) and ``result_view`` (a rewrite result, used by Rewrite and
Sessions). Pages never import openai, chromadb or xllamacpp, and never let Streamlit render HTML
(see tests/test_app_rendering.py).
"""
