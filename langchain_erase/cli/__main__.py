"""``python -m langchain_erase.cli``: the same as the ``langchain-erase`` command."""

import sys

from langchain_erase.cli.main import main

sys.exit(main())
