"""Evaluation: datasets with the ZoeDepth protocol, recorded bags, and their reports."""
