"""Tension Monitor: a taxonomy-driven news monitor for the Microsoft-OpenAI story."""

__version__ = "0.1.0"
