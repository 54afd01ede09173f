"""`python -m mailer`: the same command line as the `mailer` script."""

from mailer.cli import main

main()
