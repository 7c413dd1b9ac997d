"""Allow ``python -m charlstm``."""

from charlstm.cli import main

main()
