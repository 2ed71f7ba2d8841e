"""Worlds in which arms are run and rewarded; they plug into banditspec through entry points."""
