"""The YAML case catalogue: reading (yaml_io), the schema (schema), the Case model and loading (case), the
arrays a case describes (arrays), layer names (registry), and running cases (runner)."""
