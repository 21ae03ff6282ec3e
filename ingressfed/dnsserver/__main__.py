"""``python -m ingressfed.dnsserver``: the ``dns-serve`` command without the rest of the CLI."""

import sys

from ingressfed.dnsserver.commands import main

sys.exit(main())
