"""`python -m happ_integ.cli …`, the same as `happ …`."""

from happ_integ.cli import main

main()
