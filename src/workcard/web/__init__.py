"""Shared web layer: templates, i18n, CSRF, sessions of people, error pages."""
