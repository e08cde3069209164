"""Tests of deploy/: the image, the Kubernetes manifests, the scrape config, the dashboard."""
