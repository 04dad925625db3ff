"""Settings and operator-editable content (FAQ, modules, message templates)."""

from config.settings import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "load_settings"]
