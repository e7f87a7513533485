"""Local web pages over the Python API: ``ganforge play`` (a live training playground) and
``ganforge board`` (a read-only dashboard of run directories). Needs the ``[web]`` extra
(Starlette, uvicorn, websockets); the pages themselves are static files shipped in ``static/``."""
