"""`python -m migrator.sandbox.oss_server --config FILE`: the sandbox OSS server as its own process (see cli)."""

import sys

from migrator.sandbox.oss_server.cli import main

sys.exit(main())
