"""Loading: YAML files with line numbers, then `extends` resolved into one profile."""

from deploygen.load.profiles import (
    ResolvedProfile,
    available_profiles,
    deployable_profiles,
    load_profile,
    profile_path,
)

__all__ = ["ResolvedProfile", "available_profiles", "deployable_profiles", "load_profile", "profile_path"]
