"""Serving: engines started as real servers, a streaming load generator, metrics from its traces."""
