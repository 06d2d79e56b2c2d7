"""Integrations written with the framework; each package exposes `integration = Integration(...)`."""
