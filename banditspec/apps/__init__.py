"""What users run: the command line, the compare harness, the demo, the paper's experiments and reports."""
