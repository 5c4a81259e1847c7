"""Deploying outside the command line: the settings every way of deploying checks."""
