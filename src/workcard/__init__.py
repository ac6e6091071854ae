"""workcard: the foreigner's Work Permit and Social Security Card platform."""

__version__ = "0.1.0"
