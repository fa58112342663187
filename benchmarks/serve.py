"""``pigeonhole serve`` as the benchmark runs it: the same command, plus a traceback per 500.

Litestar logs unhandled exceptions only in debug mode, so a server that fails
under load answers 500 and says nothing about why. This turns that logging on
and changes nothing else: same CLI, same settings from the environment, same
services. Usage: ``python benchmarks/serve.py serve --port 8000``.
"""

from __future__ import annotations

import pigeonhole.web.app as web_app

_create_app = web_app.create_app


def create_app(*args, **kwargs):
    app = _create_app(*args, **kwargs)
    app.logging_config.log_exceptions = "always"
    return app


web_app.create_app = create_app

if __name__ == "__main__":
    from pigeonhole.cli import main

    main()
