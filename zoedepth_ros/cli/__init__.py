"""Command-line adapters (argparse + logging + progress bars) over the core modules."""
