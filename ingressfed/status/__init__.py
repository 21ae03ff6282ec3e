"""What an operator looks at: the read API, the status page and ``ingressfed get --controller``.

Pure pieces (``health``, ``events``, ``rates``, ``regions``, ``where``, ``document``, ``tables``)
decide what is shown; ``state`` follows the controller (or one proxy) on the event loop,
``api`` serves it over HTTP next to the feed, ``commands`` and ``client`` are the CLI side.
"""
