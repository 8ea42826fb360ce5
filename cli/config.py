"""Settings loading shared by the daemons: command-line flags > environment > TOML file > defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], config_file: Path | None, overrides: dict[str, Any]) -> S:
    """Build ``cls`` from flags (``overrides``; None means "not given"), env and an optional TOML file."""
    if config_file is not None and not Path(config_file).is_file():
        raise FileNotFoundError(f"config file {config_file} does not exist")

    class WithFile(cls):  # type: ignore[valid-type,misc]
        model_config = SettingsConfigDict(**{**cls.model_config, "toml_file": config_file})

        @classmethod
        def settings_customise_sources(
            cls_,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
            if config_file is not None:
                sources += (TomlConfigSettingsSource(settings_cls),)
            return sources

    return WithFile(**{k: v for k, v in overrides.items() if v is not None})
