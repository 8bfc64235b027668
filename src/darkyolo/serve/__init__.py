"""``darkyolo serve``: a detection service over HTTP (FastAPI on uvicorn).

* :mod:`~darkyolo.serve.settings`: what the command line decides (limits, batching, key).
* :mod:`~darkyolo.serve.requests`: one picture in (body, query options) -> checked, decoded.
* :mod:`~darkyolo.serve.batcher`: concurrent requests batched dynamically, the network run off
  the event loop, a bounded queue.
* :mod:`~darkyolo.serve.app`: the endpoints, metrics, logging and the web page (``page.html``).
"""
