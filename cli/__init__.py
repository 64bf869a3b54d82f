"""The `matgrad` command line (installed as the package matgrad_cli)."""
