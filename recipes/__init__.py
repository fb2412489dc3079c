"""Built-in recipes, one TOML file per model; installed as the package `doctor.recipes`."""
